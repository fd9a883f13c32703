"""Which services are due for renewal: the one condition the renewal run, the dunning and
the reports share."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_

from core.models import Service

svc = Service.__table__


def due_condition(horizon: dt.date, *, by_account: bool = False):
    """Services whose next period must be invoiced now. Only a fully paid service is renewed
    (``billed_until <= expires_on``): an unpaid or pending period is never billed twice.

    ``by_account``: the caller selects the services of given billing accounts; the state is then
    tested as ``state || ''``, which no index serves, so that SQLite's planner reads the
    accounts' services by the billing index instead of walking every active service (for
    SQLite only: PostgreSQL's planner, which has statistics, would then misjudge the rows)."""
    return and_(
        (svc.c.state + "" if by_account else svc.c.state) == "active",
        svc.c.billed_until <= horizon,
        svc.c.billed_until <= svc.c.expires_on,
        # new terms not accepted by their deadline: not renewed, it ends at expiry (core/ordering/contracts.py)
        or_(svc.c.terms_due_by.is_(None), svc.c.expires_on < svc.c.terms_due_by),
        or_(
            svc.c.renewal_mode == "automatic",
            # stopping is scheduled but the engagement is not over: keep renewing until it is
            and_(svc.c.renewal_mode == "terminate", svc.c.engagement_end.is_not(None), svc.c.billed_until < svc.c.engagement_end),
        ),
    )
