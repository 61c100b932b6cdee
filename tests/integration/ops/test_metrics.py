"""``[courier] metrics_listen``: a running Courier serves Prometheus /metrics with its calls counted and timed."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import stack
from tests.e2e.conftest import Courier

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def courier(tmp_path: Path) -> Iterator[tuple[Courier, str]]:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    listen = f"127.0.0.1:{_free_port()}"
    server = Courier(tmp_path, driver_name="metrics-" + uuid.uuid4().hex[:6], extra=f"metrics_listen = {listen}\n")
    server.start()
    yield server, listen
    server.stop()


def _scrape(listen: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{listen}/metrics", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _sample(samples: dict[str, float], name: str, default: float | None = None, **labels: str) -> float:
    """The sample of ``name`` whose labels include ``labels``."""
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if metric == name and all(found.get(k) == v for k, v in labels.items()):
            return value
    if default is not None:
        return default
    raise AssertionError(f"no sample {name}{labels}; have: {sorted(k for k in samples if k.startswith(name))}")


def test_metrics_count_plugin_calls_latency_and_neutron_calls(courier: tuple[Courier, str]) -> None:
    server, listen = courier
    before = _scrape(listen)  # start-up made calls of its own (the readiness probe): count from here
    cidr = f"10.239.{uuid.uuid4().int % 250}.0/24"
    for _ in range(3):
        assert server.call("Plugin.Activate")[0] == 200
    status, body = server.call("IpamDriver.RequestPool", json.dumps({"AddressSpace": "", "Pool": cidr,
                                                                      "Options": {}, "V6": False}))
    assert status == 200, body
    pool_id = json.loads(body)["PoolID"]
    assert server.call("IpamDriver.ReleasePool", json.dumps({"PoolID": pool_id}))[0] == 200
    assert server.call("NetworkDriver.NoSuchCall")[0] != 200

    after = _scrape(listen)

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, default=0.0, **labels)

    assert delta("courier_requests_total", method="Plugin.Activate", status="200") == 3
    assert delta("courier_requests_total", method="IpamDriver.RequestPool", status="200") == 1
    assert delta("courier_requests_total", method="unknown") == 1
    # the latency histogram: cumulative buckets up to +Inf, which holds every call
    assert delta("courier_request_seconds_bucket", method="Plugin.Activate", le="+Inf") == 3
    assert delta("courier_request_seconds_count", method="IpamDriver.RequestPool") == 1
    assert delta("courier_request_seconds_bucket", method="IpamDriver.RequestPool", le="30.0") == 1
    assert delta("courier_request_seconds_sum", method="IpamDriver.RequestPool") > 0
    # the Neutron calls the pool took: created, then deleted
    assert delta("courier_neutron_calls_total", method="POST", resource="subnetpools", status="201") == 1
    assert delta("courier_neutron_calls_total", method="DELETE", resource="subnetpools", status="204") == 1
    assert delta("courier_neutron_seconds_count", method="POST", resource="subnetpools") == 1
