"""Fakes shared by the binding unit tests (no kernel, no OVSDB)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any, ClassVar

from oslo_config import cfg
from ovs.db import types as ovs_types
from ovsdbapp.backend.ovs_idl import event as idl_event

from courier.binding.base import LinkDriver, PlugDriver, WaitReady
from courier.binding.ovsdb import InterfaceState, Ovsdb
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


class FakeTable:
    """Just enough of an IDL table for ovsdbapp's matching and ``frozen_row``."""

    name = "Interface"
    # Matching reads the column types; only "name" (a plain string) is ever matched on.
    _scalar = SimpleNamespace(type=ovs_types.Type(ovs_types.BaseType(ovs_types.StringType)))
    columns = dict.fromkeys(("name", "external_ids", "ofport", "error", "mtu"), _scalar)
    rows = SimpleNamespace(IndexEntry=SimpleNamespace)


class FakeRow:
    """An IDL Interface row as the IDL hands it to ``notify`` (optional columns as 0/1-element lists)."""

    _table = FakeTable()

    def __init__(self, state: InterfaceState) -> None:
        self.uuid = uuid.uuid5(uuid.NAMESPACE_DNS, state.name)
        self.name = state.name
        self.external_ids = dict(state.external_ids)
        self.ofport = [] if state.ofport is None else [state.ofport]
        self.error = [state.error] if state.error else []
        self.mtu = [] if state.mtu is None else [state.mtu]


class FakeOvsdb(Ovsdb):
    """The real ``Ovsdb`` (its watch/wait logic included) over an in-memory database instead of ovsdbapp's API.

    ``current`` is what a read of the Interface returns; ``on_plug`` are the row changes the IDL reports once
    the port is added (as ovn-controller reacts to the plug), while reads still return the older ``current``:
    only the armed event can catch them. ``change_later`` reports a change from another thread.
    """

    def __init__(self, bridges: tuple[str, ...] = ("br-int",), ovn: bool = True) -> None:
        super().__init__("fake:", 1.0)
        self.bridge_names = set(bridges)
        self.ovn = ovn
        self.ports: dict[str, tuple[str, dict[str, str], int]] = {}
        self.current: InterfaceState | None = None
        self.on_plug: list[InterfaceState] = []
        self.deleted: list[tuple[str, ...]] = []
        self.orphans: dict[str, list[str]] = {}  # vm-uuid -> interface names

    @staticmethod
    def _connect(remote: str, timeout: float) -> tuple[Any, idl_event.RowEventHandler]:
        return None, idl_event.RowEventHandler()

    def stop(self) -> None:
        self._events.shutdown()

    @property
    def watched(self) -> list[str]:
        """Interface names with an armed watch."""
        return [e.conditions[0][2] for e in self._events._watched_events]

    def report(self, state: InterfaceState) -> None:
        """The IDL saw Interface ``state`` change (called on the IDL thread in real life)."""
        self._events.notify("update", FakeRow(state))

    def change_later(self, state: InterfaceState, delay: float = 0.05) -> threading.Timer:
        timer = threading.Timer(delay, self.report, (state,))
        timer.start()
        return timer

    def bridge_exists(self, bridge: str) -> bool:
        return bridge in self.bridge_names

    def bridges(self) -> list[str]:
        return sorted(self.bridge_names)

    def add_port(self, bridge: str, name: str, external_ids: Mapping[str, str], mtu: int) -> None:
        self.ports[name] = (bridge, dict(external_ids), mtu)
        for state in self.on_plug:
            self.report(state)

    def del_ports(self, *names: str) -> None:
        self.deleted.append(names)

    def interface(self, name: str) -> InterfaceState | None:
        return self.current if self.current is not None and self.current.name == name else None

    def interfaces_with(self, **external_ids: str) -> list[str]:
        return list(self.orphans.get(external_ids.get("vm-uuid", ""), []))

    def switch_external_ids(self) -> dict[str, str]:
        return {"ovn-remote": "tcp:127.0.0.1:6642"} if self.ovn else {}


def iface(name: str, ofport: int | None = 5, error: str = "", **external_ids: str) -> InterfaceState:
    return InterfaceState(name=name, external_ids=external_ids, ofport=ofport, error=error)
