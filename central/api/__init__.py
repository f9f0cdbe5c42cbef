"""The HTTP API and dashboard server (FastAPI; the OpenAPI document is at /openapi.json): one router per
resource (session, events, snapshots, nodes, admin, live feed), shared typed dependencies in
`context`, response models in `models`, and `make_app` to put them together."""

from central.api.app import make_app
from central.api.context import WEB_DIR, ApiContext

__all__ = ["WEB_DIR", "ApiContext", "make_app"]
