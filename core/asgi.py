"""The ASGI application of one API worker process, for servers that start several
(``univers serve --workers N``, or ``uvicorn --factory core.asgi:create``).

Settings come from the ``UNIVERS_*`` environment. The schema is not migrated here: the parent
process (``univers serve``) did it before starting the workers, so they never race on it.
"""

from __future__ import annotations

from litestar import Litestar


def create() -> Litestar:
    from core.api.app import create_app
    from core.boot import build_runtime
    from core.config import Settings
    from core.logs import configure

    settings = Settings.from_env()
    configure(settings.log_format)  # a worker process logs like its parent (UNIVERS_LOG_FORMAT)
    rt = build_runtime(settings, migrate_db=False)
    return create_app(rt, scheduler=rt.settings.scheduler)
