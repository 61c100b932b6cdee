"""Fakes shared by the binding unit tests (no kernel, no OVSDB)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from oslo_config import cfg

from courier.binding.base import LinkDriver, PlugDriver, WaitReady
from courier.binding.ovsdb import InterfaceState
from courier.binding.vif import VIF
from courier.config.options import register_opts

PORT_ID = "3f1c2a9e-5b7d-4e21-9a0c-6d8e7f1a2b3c"
NETWORK_ID = "9a8b7c6d-1111-2222-3333-444455556666"


def make_conf(**overrides: Any) -> cfg.ConfigOpts:
    """A fresh ConfigOpts with Courier's options; overrides as ``group__name=value``."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([])
    for key, value in overrides.items():
        group, _, name = key.rpartition("__")
        conf.set_override(name, value, group=group or None)
    return conf


def make_vif(**fields: Any) -> VIF:
    values: dict[str, Any] = {
        "endpoint_id": "cbtest0123456789abcdef",
        "port_id": PORT_ID,
        "network_id": NETWORK_ID,
        "mac_address": "fa:16:3e:aa:bb:cc",
        "mtu": 1442,
        "vif_type": "ovs",
        "project_id": "proj-1",
    }
    values.update(fields)
    return VIF(**values)


class Recorder:
    """Ordered log of driver calls, shared by the fakes of one test."""

    def __init__(self) -> None:
        self.calls: list[str] = []


class FakeLink(LinkDriver):
    name = "fake"
    recorder = Recorder()
    fail_create: ClassVar[Exception | None] = None
    fail_delete: ClassVar[Exception | None] = None

    def create(self, vif: VIF) -> str:
        self.recorder.calls.append("link.create")
        if self.fail_create:
            raise self.fail_create
        return vif.container_ifname

    def delete(self, vif: VIF) -> None:
        self.recorder.calls.append("link.delete")
        if self.fail_delete:
            raise self.fail_delete

    def close(self) -> None:
        self.recorder.calls.append("link.close")


class FakePlug(PlugDriver):
    vif_types = ("ovs",)
    recorder = Recorder()
    fail_plug: ClassVar[Exception | None] = None
    fail_unplug: ClassVar[Exception | None] = None
    fail_wait: ClassVar[Exception | None] = None

    def plug(self, vif: VIF) -> None:
        self.recorder.calls.append("plug")
        if self.fail_plug:
            raise self.fail_plug

    def unplug(self, vif: VIF) -> None:
        self.recorder.calls.append("unplug")
        if self.fail_unplug:
            raise self.fail_unplug

    @contextlib.contextmanager
    def _watch(self) -> Iterator[WaitReady]:
        self.recorder.calls.append("watch")

        def wait(timeout: float) -> None:
            self.recorder.calls.append(f"wait {timeout:g}")
            if self.fail_wait:
                raise self.fail_wait

        try:
            yield wait
        finally:
            self.recorder.calls.append("unwatch")

    def watch_ready(self, vif: VIF) -> contextlib.AbstractContextManager[WaitReady]:
        return self._watch()

    def close(self) -> None:
        self.recorder.calls.append("plug.close")


class FakeOvsdb:
    """Stands in for courier.binding.ovsdb.Ovsdb: ``states`` is what the Interface goes through after plug."""

    def __init__(self, bridges: tuple[str, ...] = ("br-int",), ovn: bool = True) -> None:
        self.bridges = set(bridges)
        self.ovn = ovn
        self.ports: dict[str, tuple[str, dict[str, str], int]] = {}
        self.current: InterfaceState | None = None
        self.states: list[InterfaceState] = []
        self.deleted: list[tuple[str, ...]] = []
        self.watching: list[str] = []

    def bridge_exists(self, bridge: str) -> bool:
        return bridge in self.bridges

    def add_port(self, bridge: str, name: str, external_ids: Mapping[str, str], mtu: int) -> None:
        self.ports[name] = (bridge, dict(external_ids), mtu)

    def del_ports(self, *names: str) -> None:
        self.deleted.append(names)

    def interface(self, name: str) -> InterfaceState | None:
        return self.current

    def switch_external_ids(self) -> dict[str, str]:
        return {"ovn-remote": "tcp:127.0.0.1:6642"} if self.ovn else {}

    @contextlib.contextmanager
    def watch_interface(
        self, name: str, done: Callable[[InterfaceState], bool]
    ) -> Iterator[Callable[[float], InterfaceState | None]]:
        self.watching.append(name)

        def wait(timeout: float) -> InterfaceState | None:
            candidates = ([self.current] if self.current else []) + self.states
            return next((s for s in candidates if done(s)), None)

        yield wait
        self.watching.remove(name)


def iface(name: str, ofport: int | None = 5, error: str = "", **external_ids: str) -> InterfaceState:
    return InterfaceState(name=name, external_ids=external_ids, ofport=ofport, error=error)
