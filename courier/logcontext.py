"""Docker and Neutron ids on every log line of a request, without passing them around."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any, TextIO

_FIELDS = ("method", "network", "endpoint", "pool", "port")
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("courier_log", default=None)


@contextlib.contextmanager
def bind_request(method: str, payload: dict[str, Any]) -> Iterator[None]:
    ids = {"method": method}
    for key, field in (("network", "NetworkID"), ("endpoint", "EndpointID"), ("pool", "PoolID")):
        value = payload.get(field)
        if isinstance(value, str) and value:
            ids[key] = value[:12] if key != "pool" else value
    token = _context.set(ids)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**ids: str) -> None:
    """Add ids learnt during the request (e.g. the Neutron port) to the lines that follow."""
    _context.set({**(_context.get() or {}), **ids})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get() or {}
        record.ctx = " ".join(f"{k}={ctx[k]}" for k in _FIELDS if k in ctx)
        return True


def setup(level: int = logging.INFO, stream: TextIO | None = None, path: str | None = None) -> None:
    """Log lines to the file ``path`` if given (appended; Kolla's log_dir), else to ``stream`` (default stderr);
    ``courier serve`` uses stdout, as containers expect."""
    handler: logging.Handler = logging.FileHandler(path) if path else logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(ctx)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "keystoneauth", "openstack", "stevedore", "ovsdbapp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
