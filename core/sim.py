"""Simulated infrastructure for the built-in universes.

Real provisioning is slow and fails. The simulator reproduces both: every action takes
``settings.sim_delay`` seconds (scaled by the universe's own profile) and fails on demand
(``settings.sim_failures``: universe -> number of calls that fail before one succeeds).
Its resources live in a small SQLite file of their own (``settings.sim_path``), keyed by the
idempotency key, so that a provisioning retried after a crash is visibly delivered once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from core.context import ActionResult, ServiceContext

_lock = threading.Lock()
_failures_left: dict[tuple[str, str], int] = {}


class SimulatedInfrastructure:
    def __init__(self, universe: str, delay_factor: float = 1.0):
        self.universe = universe
        self.delay_factor = delay_factor

    def _db(self, settings) -> sqlite3.Connection:
        path = Path(settings.sim_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS resource (key TEXT PRIMARY KEY, universe TEXT, service_id INTEGER,"
            " action TEXT, name TEXT, at TEXT)"
        )
        return conn

    def apply(self, ctx: ServiceContext, action: str, name: str) -> ActionResult:
        settings = ctx.settings
        delay = float(getattr(settings, "sim_delay", 0.0)) * self.delay_factor
        if delay:
            time.sleep(delay)
        budget_key = (str(getattr(settings, "sim_path", "")), self.universe)
        with _lock:
            if budget_key not in _failures_left:
                _failures_left[budget_key] = int(getattr(settings, "sim_failures", {}).get(self.universe, 0))
            if _failures_left[budget_key] > 0:
                _failures_left[budget_key] -= 1
                return ActionResult("retry", detail=f"{self.universe} infrastructure timed out")
        conn = self._db(settings)
        try:
            row = conn.execute("SELECT name FROM resource WHERE key = ?", (ctx.idempotency_key,)).fetchone()
            if row:
                return ActionResult("done", resource=row[0], detail="already done")
            conn.execute(
                "INSERT INTO resource (key, universe, service_id, action, name, at) VALUES (?, ?, ?, ?, ?, ?)",
                (ctx.idempotency_key, self.universe, ctx.service_id, action, name, ctx.now.isoformat()),
            )
            return ActionResult("done", resource=name)
        finally:
            conn.close()


def resources(settings, service_id: int | None = None) -> list[tuple]:
    """What the simulator holds (for tests and the demo)."""
    path = Path(settings.sim_path)
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        sql = "SELECT key, universe, service_id, action, name FROM resource"
        args: tuple = ()
        if service_id is not None:
            sql += " WHERE service_id = ?"
            args = (service_id,)
        return conn.execute(sql + " ORDER BY rowid", args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def reset_failures() -> None:
    with _lock:
        _failures_left.clear()
