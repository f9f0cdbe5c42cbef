"""The Prometheus endpoint of the node and the aggregator: a text-format writer and a localhost server.

Why not prometheus_client (measured, not assumed): its exposition writes every sample as a float
(`roadwatch_central_events_stored_total 40.0`, `... 7.0`), so the lines our alerting notes and tests read
(`... 40`) would change, and its server answers any path with the metrics and a failing collector with a
broken response instead of a 500. What we need is small: families of samples built per scrape from
figures the services already keep (no global registry, no per-event instrumentation in the hot path),
text format 0.0.4, 404 for other paths, 500 when the provider fails.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 10.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**values: str) -> str:
    return ",".join(f'{k}="{escape(v)}"' for k, v in values.items())


def number(value: Any) -> str | None:
    """A sample value: ints stay ints, floats use repr, booleans are 1/0, anything non-finite is None."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return None
    return repr(float(value)) if isinstance(value, float) else str(value)


class MetricText:
    """Collects metric families; a family with no finite sample is left out (no sample, no lie)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[str, Any]]) -> None:
        kept = [(lbl, v) for lbl, v in ((lbl, number(v)) for lbl, v in samples) if v is not None]
        if not kept:
            return
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for lbl, v in kept:
            self.lines.append(f"{name}{{{lbl}}} {v}" if lbl else f"{name} {v}")

    def histogram(
        self, name: str, help_text: str, buckets: Iterable[tuple[float, int]], total: float, count: int
    ) -> None:
        """Cumulative `(upper bound, count)` buckets, the last bound being +inf."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        for le, n in buckets:
            bound = "+Inf" if math.isinf(le) else repr(float(le))
            self.lines.append(f'{name}_bucket{{le="{bound}"}} {n}')
        self.lines.append(f"{name}_sum {number(float(total))}")
        self.lines.append(f"{name}_count {count}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class MetricsServer:
    """Serves `GET /metrics` from `provider()`; bound to localhost unless configured otherwise.

    Requests are handled in threads (a slow client does not block the next scrape), but `provider()`
    always runs in one worker thread: the aggregator's store hands out one connection per thread, and a
    new thread per scrape would leave a connection behind on every scrape.
    """

    def __init__(self, host: str, port: int, provider: Callable[[], str], name: str = "metrics") -> None:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pool = pool

        class Handler(BaseHTTPRequestHandler):
            timeout = SCRAPE_TIMEOUT_S

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics here")
                    return
                try:
                    body = pool.submit(provider).result(timeout=SCRAPE_TIMEOUT_S).encode("utf-8")
                except Exception:
                    log.exception("metrics provider failed")
                    self.send_error(500, "metrics unavailable")
                    return
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics: " + format, *args)

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except BaseException:
            pool.shutdown(wait=False)
            raise
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{name}-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._pool.shutdown(wait=False)
