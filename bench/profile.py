"""Where a batch job's time goes, statement by statement (``univers bench renewal --profile``).

:func:`statement_profile` times every statement an engine runs (SQLAlchemy's
``before_cursor_execute`` / ``after_cursor_execute`` events) and adds the times up by label: the
function and line of the project's code that executed it, and the statement's verb and table
(``core/renewal/run.py:renew_chunk:213 INSERT invoice_line``). Opt-in: nothing is listened to
outside the ``with`` block. Times are summed over connections: with two workers the total is
about twice the wall time.

On PostgreSQL it also runs ``EXPLAIN (ANALYZE, BUFFERS)`` of the first occurrence of each
labelled write (``INSERT``/``UPDATE``/``DELETE``), inside a savepoint rolled back just before the
statement itself runs on the same data: the plan is the one the statement gets, and nothing is
written twice.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

ROOT = str(Path(__file__).resolve().parents[1])
_VERB = re.compile(r"^\s*(?:WITH\b.*?\)\s*)?(INSERT\s+INTO|UPDATE|DELETE\s+FROM|SELECT|SET|[A-Z]+)\s*([\w\"]*)", re.I | re.S)
_FROM = re.compile(r"\bFROM\s+([\w\"]+)", re.I)


@dataclass
class Profile:
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)  # PostgreSQL: label -> EXPLAIN (ANALYZE, BUFFERS)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, label: str, seconds: float) -> None:
        with self._lock:
            self.seconds[label] = self.seconds.get(label, 0.0) + seconds
            self.calls[label] = self.calls.get(label, 0) + 1

    def summary(self, top: int = 25) -> list[dict]:
        """The labels by time spent, most first: seconds, share of the statements' total, calls, mean ms."""
        total = sum(self.seconds.values()) or 1.0
        rows = sorted(self.seconds.items(), key=lambda kv: -kv[1])[:top]
        return [{"statement": k, "seconds": round(s, 3), "share": round(s / total, 3), "calls": self.calls[k],
                 "mean_ms": round(1000 * s / self.calls[k], 2)} for k, s in rows]

    def print(self, out=sys.stderr) -> None:
        total = sum(self.seconds.values())
        print(f"-- statements: {sum(self.calls.values())} executions, {total:.2f} s summed over connections", file=out)
        for r in self.summary():
            print(f"{r['seconds']:9.3f} s {100 * r['share']:5.1f} % {r['calls']:6d} x {r['mean_ms']:9.2f} ms  {r['statement']}",
                  file=out)
        for label, plan in self.plans.items():
            print(f"\n-- EXPLAIN (ANALYZE, BUFFERS) {label}\n{plan}", file=out)


def _caller() -> str:
    """The innermost frame of the project's own code (not SQLAlchemy, not this module), and, when
    that is a helper of the same file (``_audit_select``), the line that called it."""
    frame, found = sys._getframe(2), []
    while frame is not None and len(found) < 2:
        name = frame.f_code.co_filename
        if name.startswith(ROOT) and "/.venv/" not in name and not name.endswith(("bench/profile.py", "core/db.py", "core/uow.py")):
            if found and (name != found[0][0] or not found[0][1].startswith("_")):
                break
            found.append((name, frame.f_code.co_name, frame.f_lineno))
        frame = frame.f_back
    if not found:
        return "?"
    name, func, line = found[0]
    return f"{name[len(ROOT) + 1:]}:{func}:{line}" + (f"<{found[1][1]}:{found[1][2]}" if len(found) > 1 else "")


def label_of(statement: str) -> str:
    m = _VERB.match(statement)
    if not m:
        return statement[:30]
    verb, table = m.group(1).split()[0].upper(), m.group(2).strip('"')
    if verb == "SELECT":
        f = _FROM.search(statement)
        table = f.group(1).strip('"') if f else ""
    return f"{verb} {table}".strip()


@contextlib.contextmanager
def statement_profile(engine: Engine, *, explain: bool = True) -> Iterator[Profile]:
    """Time every statement ``engine`` runs inside the block, by label (see the module)."""
    profile = Profile()
    postgres = engine.dialect.name == "postgresql"

    def before(conn, cursor, statement, parameters, context, executemany):
        label = f"{_caller()} {label_of(statement)}"
        if explain and postgres and label not in profile.plans and re.match(r"\s*(INSERT|UPDATE|DELETE)\b", statement, re.I):
            profile.plans[label] = "(running)"
            with conn.connection.dbapi_connection.cursor() as cur:
                cur.execute("SAVEPOINT univers_explain")
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                profile.plans[label] = "\n".join(r[0] for r in cur.fetchall())
                cur.execute("ROLLBACK TO SAVEPOINT univers_explain")
        context._univers_profile = (label, time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        started = getattr(context, "_univers_profile", None)
        if started:
            profile.add(started[0], time.perf_counter() - started[1])

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield profile
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
