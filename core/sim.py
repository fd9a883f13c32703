"""Simulated infrastructure for the built-in universes, and the test card gateway.

Real provisioning is slow and fails. The simulator reproduces both: every action takes
``settings.sim_delay`` seconds (scaled by the universe's own profile) and fails on demand
(``settings.sim_failures``: universe -> number of calls that fail before one succeeds).
Its resources live in a small SQLite file of their own (``settings.sim_path``), keyed by the
idempotency key, so that a provisioning retried after a crash is visibly delivered once.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from pathlib import Path

from core.context import ActionResult, ServiceContext

_lock = threading.Lock()
_failures_left: dict[tuple[str, str], int] = {}


def _db(settings) -> sqlite3.Connection:
    path = Path(settings.sim_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS resource (key TEXT PRIMARY KEY, universe TEXT, service_id INTEGER,"
                 " action TEXT, name TEXT, at TEXT)")
    conn.execute("CREATE TABLE IF NOT EXISTS charge (key TEXT PRIMARY KEY, ref TEXT, status TEXT, amount_minor INTEGER,"
                 " currency TEXT, calls INTEGER)")
    return conn


def take_failure(settings, name: str) -> bool:
    """Whether this call to ``name`` (a universe, or ``gateway``) must fail, per ``sim_failures``."""
    budget_key = (str(getattr(settings, "sim_path", "")), name)
    with _lock:
        if budget_key not in _failures_left:
            _failures_left[budget_key] = int(getattr(settings, "sim_failures", {}).get(name, 0))
        if _failures_left[budget_key] > 0:
            _failures_left[budget_key] -= 1
            return True
    return False


class GatewayUnavailable(Exception):
    """The gateway did not answer (a timeout): the same attempt is tried again, with the same key."""


class TestGateway:
    """A card gateway whose answer is scripted (success, decline or pending) and which, like a
    real one, is idempotent on the key of each attempt: the same key never charges twice and
    always gets the first answer back. Its charges live in the simulator's file, so a worker
    killed after the call finds the charge again. ``sim_failures`` ``gateway:N`` makes the next N
    calls time out. A pending charge is settled later by its callback
    (:func:`core.payments.settlement.resolve_pending`)."""

    def charge(self, settings, key: str, amount_minor: int, currency: str, outcome: str | None) -> tuple[str, str]:
        """Charge once per key. Like a client of a real gateway, the call waits at most
        ``settings.gateway_timeout`` seconds: a gateway slower than that (``sim_gateway_delay``)
        has taken the charge on its side, but its answer is lost (GatewayUnavailable); the
        retry with the same key gets the first answer back."""
        if take_failure(settings, "gateway"):
            raise GatewayUnavailable("the test gateway timed out")
        delay = float(getattr(settings, "sim_gateway_delay", 0.0))
        timeout = float(getattr(settings, "gateway_timeout", 30.0))
        answer = self._charge(settings, key, amount_minor, currency, outcome)
        if delay > timeout:
            time.sleep(timeout)
            raise GatewayUnavailable(f"the test gateway did not answer within {timeout:g} s")
        if delay:
            time.sleep(delay)
        return answer

    def _charge(self, settings, key: str, amount_minor: int, currency: str, outcome: str | None) -> tuple[str, str]:
        conn = _db(settings)
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT ref, status FROM charge WHERE key = ?", (key,)).fetchone()
            if row:
                conn.execute("UPDATE charge SET calls = calls + 1 WHERE key = ?", (key,))
            else:
                row = ("tg_" + secrets.token_hex(12),
                       {"success": "succeeded", "decline": "failed", "pending": "pending"}[outcome or "success"])
                conn.execute("INSERT INTO charge VALUES (?, ?, ?, ?, ?, 1)", (key, *row, amount_minor, currency))
            conn.execute("COMMIT")
            return row[0], row[1]
        finally:
            conn.close()


def charges(settings) -> list[tuple]:
    """What the test gateway charged: (key, ref, status, amount_minor, currency, calls)."""
    if not Path(settings.sim_path).exists():
        return []
    conn = _db(settings)
    try:
        return conn.execute("SELECT key, ref, status, amount_minor, currency, calls FROM charge ORDER BY rowid").fetchall()
    finally:
        conn.close()


class SimulatedInfrastructure:
    def __init__(self, universe: str, delay_factor: float = 1.0):
        self.universe = universe
        self.delay_factor = delay_factor

    def apply(self, ctx: ServiceContext, action: str, name: str) -> ActionResult:
        settings = ctx.settings
        delay = float(getattr(settings, "sim_delay", 0.0)) * self.delay_factor
        if delay:
            time.sleep(delay)
        if take_failure(settings, self.universe):
            return ActionResult("retry", detail=f"{self.universe} infrastructure timed out")
        conn = _db(settings)
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
