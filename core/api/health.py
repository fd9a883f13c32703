"""Health probes, for a load balancer or an orchestrator; no key is needed, nothing is changed.

* ``GET /health/live``: the process answers (it touches no database): 200 ``{"status": "ok"}``.
  A failing liveness probe means "restart me".
* ``GET /health/ready``: it can serve: the database answers, its schema is at the migrations'
  head (the Alembic revision it records is the newest this code ships: a database behind, or
  ahead after a rollback of the code, is not ready), and the catalog the process runs is valid
  (it passed the start-up check: it sells something, and every plan it sells has its product).
  200 with each check's result, else 503 problem+json (``code``: ``not_ready``) whose ``checks``
  say which failed and why. A failing readiness probe means "send no traffic here".

Both are left out of the rate limit (``/health``) and logged at DEBUG (core.api.requestlog),
and neither is in the OpenAPI.
"""

from __future__ import annotations

import functools
import logging

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from litestar import Request, Response, get
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from core.api.common import locale_of, runtime
from core.db import alembic_config
from core.i18n import N_, translate
from core.logs import current_request_id
from core.runtime import Runtime

log = logging.getLogger("univers.health")


@functools.cache
def migrations_head() -> str | None:
    """The newest revision this code ships (read once: the files do not change under a process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def checks(rt: Runtime) -> dict[str, dict]:
    """Each readiness check: ``{"ok": bool, "detail": str}``, database first (the schema is read
    only when the database answers)."""
    out: dict[str, dict] = {}
    head = migrations_head()
    try:
        with rt.engine.connect() as conn:
            conn.execute(select(1))
            out["database"] = {"ok": True, "detail": rt.settings.engine_name}
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable: %s", exc.__class__.__name__)
        out["database"] = {"ok": False, "detail": f"unreachable ({exc.__class__.__name__})"}
        out["migrations"] = {"ok": False, "detail": "unknown: the database does not answer"}
    else:
        out["migrations"] = {"ok": current == head,
                             "detail": f"at {current or 'no revision'}, head {head}" if current != head else f"at head {head}"}
    catalog = rt.catalog
    orphans = [code for code, plan in catalog.plans.items() if plan.product_code not in catalog.products]
    ok = bool(catalog.plans) and not orphans
    out["catalog"] = {"ok": ok, "detail": f"{len(catalog.products)} products, {len(catalog.plans)} plans" if ok
                      else ("no plan on sale" if not catalog.plans else f"plans without their product: {', '.join(sorted(orphans)[:5])}")}
    return out


@get("/health/live", sync_to_thread=False, include_in_schema=False)
def live() -> dict:
    return {"status": "ok"}


@get("/health/ready", sync_to_thread=True, include_in_schema=False)
def ready(request: Request) -> Response:
    results = checks(runtime(request))
    if all(c["ok"] for c in results.values()):
        return Response({"status": "ok", "checks": results}, status_code=200)
    failed = [name for name, c in results.items() if not c["ok"]]
    body = {"type": "https://univers.example/problems/not_ready", "title": "not ready", "status": 503, "code": "not_ready",
            "detail": translate(N_("The service is not ready: {checks}."), locale_of(request)).format(checks=", ".join(failed)),
            "instance": request.url.path, "failed": failed, "checks": results}
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    return Response(body, status_code=503, media_type="application/problem+json", headers={"Retry-After": "5"})


ROUTES = [live, ready]
