"""The demo data of `./dev run`: seeded once through the real operations, on both engines."""

from __future__ import annotations

from sqlalchemy import func, select

from core import demo
from core.models import Account, Commitment, ContactChange, Service, SpendingAlert, SupportTicket, UsageRecord
from core.usage import alerts


def test_the_demo_seeds_once_with_a_metered_project(rt, clock, tmp_path):
    clock.set("2026-01-28T12:00:00+00:00")  # the four weeks of usage are all in January
    keys = demo.seed(rt, tmp_path / "keys.json")
    assert keys and "staff" in keys and (tmp_path / "keys.json").exists()
    assert demo.seed(rt) is None  # accounts exist: nothing more
    with rt.engine.connect() as conn:
        count = lambda t: conn.execute(select(func.count()).select_from(t.__table__)).scalar_one()  # noqa: E731
        assert count(Account) == len(demo.CUSTOMERS) + 1
        assert conn.execute(select(func.count()).where(Service.__table__.c.state == "active")).scalar_one() >= 8
        assert count(UsageRecord) == 2 * (27 * 24 - 1)  # a b3-8 instance and a volume, every past hour
        assert (count(Commitment), count(SpendingAlert)) == (1, 1)
        assert (count(SupportTicket), count(ContactChange)) == (2, 1)  # the queue and the Manager have work
    assert alerts.check_alerts(rt).notified == 1  # four weeks of a b3-8 and a volume pass the alert at 20.00 (≈ 33 €)
