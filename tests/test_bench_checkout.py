"""`univers bench checkout` end to end at a small size: the real server, concurrent clients
ordering from their balance with replays, and the books checked afterwards (each order
charged once, balances adding up). CI runs it on both engines."""

from __future__ import annotations

from bench.checkout import run
from core.testing import PG_URL


def test_bench_checkout_orders_concurrently_charges_each_order_once_and_cleans_up(engine_name, tmp_path):
    database = PG_URL if engine_name == "postgresql" else f"sqlite:///{tmp_path / 'bench.db'}"
    result = run(database, workers=1, clients=3, seconds=2)
    assert result["bench"] == "checkout" and result["engine"] == engine_name
    assert result["errors"] == 0, result["first_errors"]
    assert result["orders"] > 0 and result["orders_per_s"] > 0
    assert result["books"] == "ok" and result["invoices"] == result["orders"] and result["charged"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    if engine_name == "sqlite":
        assert list(tmp_path.iterdir()) == []  # the database file is gone
