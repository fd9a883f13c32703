"""The demo data of `./dev run`: seeded once through the real operations, on both engines."""

from __future__ import annotations

import json
import stat

from sqlalchemy import func, select

from core import demo
from core.models import Account, Commitment, ContactChange, Service, SpendingAlert, SupportTicket, UsageRecord
from core.usage import alerts


def test_the_demo_seeds_once_with_a_metered_project(rt, clock, tmp_path):
    clock.set("2026-01-28T12:00:00+00:00")  # the four weeks of usage are all in January
    keys = demo.seed(rt, tmp_path / "keys.json")
    assert keys and "staff" in keys and (tmp_path / "keys.json").exists()
    assert stat.S_IMODE((tmp_path / "keys.json").stat().st_mode) == 0o600  # the administrator's key is in it
    assert json.loads((tmp_path / "keys.json").read_text()) == keys
    assert demo.seed(rt) is None  # accounts exist: nothing more
    with rt.engine.connect() as conn:
        count = lambda t: conn.execute(select(func.count()).select_from(t.__table__)).scalar_one()  # noqa: E731
        assert count(Account) == len(demo.CUSTOMERS) + 1
        assert conn.execute(select(func.count()).where(Service.__table__.c.state == "active")).scalar_one() >= 8
        assert count(UsageRecord) == 2 * (27 * 24 - 1)  # a b3-8 instance and a volume, every past hour
        assert (count(Commitment), count(SpendingAlert)) == (1, 1)
        assert (count(SupportTicket), count(ContactChange)) == (2, 1)  # the queue and the Manager have work
    assert alerts.check_alerts(rt).notified == 1  # four weeks of a b3-8 and a volume pass the alert at 20.00 (≈ 33 €)


KEYS = {"staff": "uk_ADMINISTRATOR_SECRET", "bo12345-univers": "uk_customer_one", "jo67890-univers": "uk_customer_two"}


def test_only_the_customers_keys_are_printed(tmp_path):
    lines = "\n".join(demo.announce(KEYS, tmp_path / "demo-keys.json"))
    assert "uk_customer_one" in lines and "uk_customer_two" in lines
    assert "uk_ADMINISTRATOR_SECRET" not in lines and str(tmp_path / "demo-keys.json") in lines


def test_the_keys_file_is_readable_by_its_owner_only_even_when_it_was_not(tmp_path):
    path = tmp_path / "var" / "demo-keys.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)  # an older file, readable by all
    demo.write_keys(path, KEYS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and json.loads(path.read_text()) == KEYS


def test_univers_demo_prints_no_administrator_key(tmp_path, monkeypatch, capsys):
    from core.cli import main

    written = {}
    monkeypatch.setenv("UNIVERS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("UNIVERS_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    monkeypatch.setattr(demo, "seed", lambda rt, keys_file: written.setdefault(keys_file, KEYS))
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "uk_customer_one" in out and "uk_ADMINISTRATOR_SECRET" not in out
    assert list(written) == [tmp_path / "demo-keys.json"]
