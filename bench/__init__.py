"""Benchmarks. Each writes one JSON line of figures to ``bench/results.jsonl``."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url


@contextlib.contextmanager
def scratch_database(database: str) -> Iterator[tuple[Engine, str]]:
    """A fresh, empty database beside the one named: a PostgreSQL schema of its own, or an SQLite
    file next to the given one. Yields an engine on it and the URL a server process reaches it
    by; drops the schema or deletes the file afterwards, whatever happened."""
    from core.db import make_engine

    url = make_url(database)
    admin = schema = tmp_file = engine = None
    try:
        if url.get_backend_name() == "postgresql":
            admin = create_engine(database)
            schema = f"univers_bench_{uuid.uuid4().hex[:8]}"
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            engine = make_engine(database, search_path=schema)
            server_url = url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        else:
            path = Path(url.database or "bench.db")
            tmp_file = path.with_name(f"{path.stem}-{uuid.uuid4().hex[:8]}{path.suffix or '.db'}")
            server_url = f"sqlite:///{tmp_file}"
            engine = make_engine(server_url)
        yield engine, server_url
    finally:
        if engine is not None:
            engine.dispose()
        if schema:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        if admin is not None:
            admin.dispose()
        if tmp_file:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{tmp_file}{suffix}").unlink(missing_ok=True)


def report(results: list[dict], output: str | None) -> None:
    """Print each result as one JSON line and append it to the results file."""
    lines = [json.dumps(r) for r in results]
    for line in lines:
        print(line)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        with open(output, "a", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
