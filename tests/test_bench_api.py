"""`univers bench api` end to end on tiny databases: it loads, serves, measures and cleans up."""

from __future__ import annotations

from bench.api import ENDPOINTS, run_side_by_side


def test_bench_api_runs_two_sizes_side_by_side_on_sqlite(tmp_path):
    results = run_side_by_side([200, 300], f"sqlite:///{tmp_path / 'bench.db'}", customers=20, requests=10, warmup=3)
    assert [r["services"] for r in results] == [200, 300]
    assert [r["alongside"] for r in results] == [[300], [200]]
    assert [r["large_customer_services"] for r in results] == [20, 30]
    for result in results:
        assert result["bench"] == "api" and result["engine"] == "sqlite"
        assert (result["customers"], result["requests"]) == (20, 10)
        for name in ENDPOINTS:
            figures = result[name]
            assert 0 < figures["p50_ms"] <= figures["p99_ms"] < 10_000, (name, figures)
            assert figures["requests_per_s"] > 0
        assert result["server_peak_rss_mb"] is None or result["server_peak_rss_mb"] > 10
    assert list(tmp_path.iterdir()) == []  # the database files are gone
