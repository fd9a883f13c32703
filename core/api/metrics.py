"""``GET /metrics``: the Prometheus text exposition, for staff whose role allows ``staff.metrics``
(an administrator; a scraper's key is narrowed to the scope ``metrics:read``, which opens
nothing else). Customers get 403, like every staff route; no key gets 401.

It shows three things (the README's "Metrics" lists each metric):

* HTTP requests by route and status, counted by Litestar's Prometheus middleware
  (:func:`middleware`): the route is its path template (``/v1/services/{service_id}``),
  never the path a caller sent, so ids never become labels;
* the runtime's business counters (:class:`core.telemetry.Telemetry`): renewal runs, invoices
  issued, dunning steps, charges, usage records;
* the queues, read from the database at scrape time (:class:`core.telemetry.QueueCollector`).

Under several API workers (``univers serve --workers N``) each worker is a process with its own
counters: ``univers serve`` gives them one directory for prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``), where each writes its counters, and the worker that answers a
scrape sums them all. A worker that stops removes its live gauges (:func:`worker_stopped`).
"""

from __future__ import annotations

import os

from litestar import Request, Response, get
from litestar.middleware.base import DefineMiddleware
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.registry import Collector

from core.api.common import runtime, staff
from core.runtime import Runtime
from core.telemetry import QueueCollector
from core.uow import unit_of_work

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable, read when it is imported


def middleware() -> DefineMiddleware:
    """Litestar's Prometheus middleware: ``univers_http_requests_total`` and
    ``univers_http_request_duration_seconds`` by method, path template and status. The health
    probes (``/health/live``, ``/health/ready``, polled every few seconds) are not counted."""
    return PrometheusConfig(app_name="univers", prefix="univers_http", group_path=True, exclude=[r"^/health/"]).middleware


class _Joined(Collector):
    """The metrics of several registries as one (the process's own: HTTP, process; the runtime's)."""

    def __init__(self, *registries: CollectorRegistry):
        self.registries = registries

    def collect(self):
        for registry in self.registries:
            yield from registry.collect()


def exposition(rt: Runtime) -> bytes:
    """Everything, in the text format, as of now."""
    registry = CollectorRegistry(auto_describe=False)
    folder = os.environ.get(MULTIPROCESS)
    if folder:  # every worker's counters, from their files (the runtime's included)
        multiprocess.MultiProcessCollector(registry, path=folder)
    else:
        registry.register(_Joined(REGISTRY, rt.telemetry.registry))
    registry.register(QueueCollector(rt))
    return generate_latest(registry)


def worker_stopped() -> None:
    """A worker process stops: its live gauges (requests in progress) leave the sums."""
    if os.environ.get(MULTIPROCESS):
        multiprocess.mark_process_dead(os.getpid())


@get("/metrics", sync_to_thread=True, include_in_schema=False, opt={"scope": "metrics:read"})
def metrics(request: Request) -> Response:
    """Staff: the metrics in Prometheus' text format."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.metrics")
    return Response(exposition(rt), media_type=CONTENT_TYPE_LATEST)


ROUTES = [metrics]
