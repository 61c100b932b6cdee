"""`courier serve` reconciles at start only when it knows the Docker daemon, and never fails to serve over it."""

from __future__ import annotations

from typing import Any

import pytest
from oslo_config import cfg

from courier.config import options
from courier.ops import startup


def _conf(docker_host: str | None) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([])
    conf.set_override("docker_host", docker_host, group="courier")
    conf.set_override("host_id", "testhost", group="binding")
    return conf


class _Local:
    closed = False

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        pass

    def close(self) -> None:
        _Local.closed = True


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    from courier.ops import docker, gc, host

    monkeypatch.setattr(docker, "DockerClient", lambda h: ("client", h))
    monkeypatch.setattr(docker, "snapshot", lambda client: ("view", client))
    monkeypatch.setattr(host, "LocalHost", _Local)

    def reconcile(neutron: Any, view: Any, local: Any, host_id: str, **_: Any) -> tuple[Any, list[Any]]:
        seen.append((neutron, view, host_id))
        return gc.Plan(), []

    monkeypatch.setattr(gc, "reconcile", reconcile)
    return seen


def test_no_docker_host_no_reconcile(calls: list[tuple[Any, ...]]) -> None:
    assert startup.reconcile_in_background(_conf(None), neutron=object()) is None  # type: ignore[arg-type]
    assert calls == []


def test_reconciles_against_the_configured_docker(calls: list[tuple[Any, ...]]) -> None:
    neutron = object()
    thread = startup.reconcile_in_background(_conf("unix:///run/docker.sock"), neutron)  # type: ignore[arg-type]
    assert thread is not None
    thread.join(10)
    assert calls == [(neutron, ("view", ("client", "unix:///run/docker.sock")), "testhost")]
    assert _Local.closed


def test_a_failing_reconcile_only_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from courier.ops import docker, host

    def unreachable(client: Any) -> Any:
        raise RuntimeError("docker is not there")

    monkeypatch.setattr(docker, "DockerClient", lambda h: h)
    monkeypatch.setattr(docker, "snapshot", unreachable)
    monkeypatch.setattr(host, "LocalHost", _Local)
    startup.reconcile_once(_conf("unix:///nowhere"), neutron=object())  # type: ignore[arg-type]
    assert "reconcile at start skipped: docker is not there" in caplog.text
