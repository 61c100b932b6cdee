"""Prometheus metrics. Buckets are in seconds and start at a millisecond: plugin calls are fast."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("courier_requests", "Docker plugin calls", ["method", "status"])
REQUEST_SECONDS = Histogram("courier_request_seconds", "Docker plugin call latency", ["method"], buckets=_FAST)
NEUTRON_CALLS = Counter("courier_neutron_calls", "Neutron API calls", ["method", "resource", "status"])
NEUTRON_SECONDS = Histogram("courier_neutron_seconds", "Neutron API call latency", ["method", "resource"],
                            buckets=_FAST)
BIND_SECONDS = Histogram("courier_bind_seconds", "Time to bind a container interface", ["vif_type"],
                         buckets=_FAST)
PORT_READY_SECONDS = Histogram("courier_port_ready_seconds", "Time until a plugged port forwards traffic",
                               buckets=_FAST)

POOL_READY = Gauge("courier_pool_ready_ports", "Ready ports in the warm pool", ["network"])
POOL_TAKES = Counter("courier_pool_takes", "Container starts served by the warm pool (hit) or not (miss)",
                     ["result"])
POOL_REFILL_SECONDS = Histogram("courier_pool_refill_seconds", "Time to make a batch of pooled ports ready",
                                buckets=_FAST)


def serve(listen: str) -> None:
    """Start the /metrics listener on ``host:port`` in a daemon thread."""
    from prometheus_client import start_http_server

    host, _, port = listen.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1")
