"""Scheduled jobs (APScheduler 3): the daily renewal run, the monthly usage invoices, the spending alerts, the SLA
clocks of support tickets, and the workers of the three queues (provisioning outbox, gateway charges, notifications).

Jobs are safe to run in several processes at once (database locks and leases share the
work; unique keys make a repeat a no-op), so a scheduler per API worker bills nothing twice.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from core.infralogs.retention import purge as purge_infra_logs
from core.lifecycle.outbox import run_outbox
from core.notify.send import run_mailer
from core.payments.charges import run_charges
from core.renewal.run import run_renewal
from core.runtime import Runtime
from core.support.sla import run_sla
from core.usage.alerts import check_alerts
from core.usage.metering import run_usage_billing

log = logging.getLogger("univers.scheduler")


def renewal_job(rt: Runtime) -> None:
    summary = run_renewal(rt)
    log.info("renewal run %s", summary.as_dict())


def usage_billing_job(rt: Runtime) -> None:
    """Invoice the previous month's usage. It runs every day, not only on the 1st: a day the
    job did not run is caught up, and a month already closed is skipped (a no-op)."""
    summary = run_usage_billing(rt)
    if summary.projects or summary.failed:
        log.info("usage billing %s", summary.as_dict())


def spending_alerts_job(rt: Runtime) -> None:
    """Warn the projects whose month so far has reached their spending alert (once a month each)."""
    done = check_alerts(rt)
    if done.notified:
        log.info("spending alerts: %d checked, %d notified", done.checked, done.notified)


def sla_job(rt: Runtime) -> None:
    """Record the breaches of support tickets and raise their warnings and escalations."""
    done = run_sla(rt)
    if done.breaches or done.escalated:
        log.info("support SLA %s", done.as_dict())


def infra_logs_job(rt: Runtime) -> None:
    """Delete the infrastructure log entries older than their universe's retention."""
    done = purge_infra_logs(rt)
    if done.deleted:
        log.info("infrastructure logs purged: %s", done.by_universe)


def run_queues(rt: Runtime, limit: int = 1000) -> dict:
    """One pass over each queue: provisioning actions, then charges, then the notifications
    they caused."""
    return {"outbox": run_outbox(rt, limit=limit), "charges": run_charges(rt, limit=limit), "mail": run_mailer(rt, limit=limit)}


def outbox_job(rt: Runtime) -> None:
    stats = run_queues(rt, limit=200)
    if any(any(vars(v).values()) for v in stats.values()):
        log.info("queues %s", stats)


def start_scheduler(rt: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    scheduler.add_job(outbox_job, "interval", seconds=5, args=[rt], id="outbox", next_run_time=rt.clock.now())
    scheduler.add_job(renewal_job, "cron", hour=2, minute=0, args=[rt], id="renewal")
    scheduler.add_job(renewal_job, "date", args=[rt], id="renewal-at-start", run_date=rt.clock.now())
    scheduler.add_job(usage_billing_job, "cron", hour=3, minute=0, args=[rt], id="usage-billing")
    scheduler.add_job(spending_alerts_job, "interval", minutes=rt.settings.alert_minutes, args=[rt], id="spending-alerts")
    scheduler.add_job(sla_job, "interval", minutes=1, args=[rt], id="support-sla")
    scheduler.add_job(infra_logs_job, "cron", hour=4, minute=0, args=[rt], id="infra-logs-purge")
    scheduler.start()
    log.info("scheduler started: outbox every 5 s, renewal daily at 02:00 UTC and now, usage invoices daily at 03:00 UTC, "
             "spending alerts every %d min, support SLA every minute, infrastructure logs purged daily at 04:00 UTC",
             rt.settings.alert_minutes)
    return scheduler
