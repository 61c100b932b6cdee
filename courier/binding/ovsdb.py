"""The local OVSDB, behind the few calls the OVS plug needs (cf. os-vif's ovsdb_lib).

One ovsdbapp ``Connection`` per OVSDB remote and process, shared by every user and stopped when the last one
releases it. Its IDL forwards row changes to a ``RowEventHandler``, so callers wait for OVS/OVN to change an
Interface instead of polling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ovsdbapp.backend.ovs_idl import connection, idlutils
from ovsdbapp.backend.ovs_idl import event as idl_event
from ovsdbapp.schema.open_vswitch import impl_idl

from courier.binding.errors import BindingError

SCHEMA = "Open_vSwitch"
# Only the columns used: Interface statistics alone would otherwise wake us every few seconds per port.
COLUMNS = {
    "Open_vSwitch": ["bridges", "cur_cfg", "next_cfg", "external_ids"],
    "Bridge": ["name", "ports"],
    "Port": ["name", "interfaces"],
    "Interface": ["name", "type", "external_ids", "ofport", "error", "mtu", "mtu_request"],
}


# external_ids key ovn-controller sets to "true" once the interface's flows are installed.
OVN_INSTALLED = "ovn-installed"


@dataclasses.dataclass(frozen=True)
class InterfaceState:
    name: str
    external_ids: Mapping[str, str]
    ofport: int | None  # None: not attached yet; -1: OVS failed to attach it
    error: str
    mtu: int | None = None
    bridge: str = ""  # filled in by Ovsdb.interfaces() only

    @property
    def ovn_installed(self) -> bool:
        return self.external_ids.get(OVN_INSTALLED) == "true"

    @classmethod
    def from_row(cls, row: Any) -> InterfaceState:
        return cls(name=row.name, external_ids=dict(row.external_ids), ofport=_single(row.ofport),
                   error=_single(row.error) or "", mtu=_single(row.mtu))

    @classmethod
    def from_record(cls, record: Mapping[str, Any], bridge: str = "") -> InterfaceState:
        return cls(name=record["name"], external_ids=dict(record["external_ids"]),
                   ofport=_single(record["ofport"]), error=_single(record["error"]) or "",
                   mtu=_single(record.get("mtu")), bridge=bridge)


def _single(value: Any) -> Any:
    """OVSDB optional columns come as a list of zero or one element from the IDL."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


class _NotifyingIdl(connection.OvsdbIdl):
    def __init__(self, remote: str, helper: Any) -> None:
        super().__init__(remote, helper)
        self.notify_handler = idl_event.RowEventHandler()

    def notify(self, event: str, row: Any, updates: Any = None) -> None:
        self.notify_handler.notify(event, row, updates)


class InterfaceEvent(idl_event.WaitEvent):
    """Fires once Interface ``name`` satisfies ``done`` (matched on the IDL thread, on each change).

    ovsdbapp's one-shot WaitEvent: the handler drops it after it ran; ``state`` is the row that fired it.
    """

    def __init__(self, name: str, done: Callable[[InterfaceState], bool]) -> None:
        super().__init__((self.ROW_CREATE, self.ROW_UPDATE), "Interface", (("name", "=", name),))
        self.event_name = f"courier-interface-{name}"
        self._done = done
        self.state: InterfaceState | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        # Two binds watching the same name must not collapse into one event in the handler's set.
        return (*super().key, id(self))

    def match_fn(self, event: str, row: Any, old: Any) -> bool:
        return self._done(InterfaceState.from_row(row))

    def run(self, event: str, row: Any, old: Any) -> None:
        self.state = InterfaceState.from_row(row)
        super().run(event, row, old)

    def wait_for(self, timeout: float) -> InterfaceState | None:
        """The state that fired the event, or None if it did not fire within ``timeout`` seconds."""
        return self.state if self.event.wait(max(0.0, timeout)) else None


class Ovsdb:
    """The local OVSDB: the only way into it for the rest of Courier (no raw ovsdbapp API outside)."""

    def __init__(self, remote: str, timeout: float) -> None:
        self.remote = remote
        try:
            self._api, self._events = self._connect(remote, timeout)
        except Exception as exc:
            raise BindingError(f"Cannot connect to the local OVSDB at {remote} ([courier] ovsdb_connection): "
                               f"{exc}. Is ovsdb-server running?") from exc

    @staticmethod
    def _connect(remote: str, timeout: float) -> tuple[Any, idl_event.RowEventHandler]:
        """The ovsdbapp API and the handler the IDL hands row changes to (tests replace this)."""
        helper = idlutils.get_schema_helper(remote, SCHEMA)
        for table, columns in COLUMNS.items():
            helper.register_columns(table, columns)
        idl = _NotifyingIdl(remote, helper)
        # ovsdbapp keeps the connection on the API class: a class of our own per connection keeps it apart
        # from any other ovsdbapp user in the process and lets a later Ovsdb start afresh.
        api_class = type("CourierVswitchApi", (impl_idl.OvsdbIdl,), {})
        return api_class(connection.Connection(idl, timeout=timeout)), idl.notify_handler

    def stop(self) -> None:
        self._api.ovsdb_connection.stop(timeout=5)
        self._events.shutdown()

    def bridge_exists(self, bridge: str) -> bool:
        return bool(self._api.br_exists(bridge).execute(check_error=True))

    def bridges(self) -> list[str]:
        return sorted(self._api.list_br().execute(check_error=True))

    def add_port(self, bridge: str, name: str, external_ids: Mapping[str, str], mtu: int) -> None:
        """Add port ``name`` to ``bridge`` and set its Interface columns, in one transaction; idempotent."""
        with self._api.transaction(check_error=True) as txn:
            txn.add(self._api.add_port(bridge, name, may_exist=True))
            txn.add(self._api.db_set("Interface", name, ("external_ids", dict(external_ids)),
                                     ("mtu_request", mtu), if_exists=False))

    def del_ports(self, *names: str) -> None:
        """Remove the ports (and their interfaces) from whichever bridge holds them; skip absent ones."""
        with self._api.transaction(check_error=True) as txn:
            for name in names:
                txn.add(self._api.del_port(name, if_exists=True))

    def interface(self, name: str) -> InterfaceState | None:
        command = self._api.db_list("Interface", [name], columns=list(_INTERFACE_COLUMNS), if_exists=True)
        records = command.execute(check_error=True)
        return InterfaceState.from_record(records[0]) if records else None

    def interfaces(self) -> list[InterfaceState]:
        """Every Interface, each with the bridge its port is on ("" if none)."""
        bridge_of = {port: br for br in self.bridges()
                     for port in self._api.list_ports(br).execute(check_error=True)}
        records = self._api.db_list("Interface", columns=list(_INTERFACE_COLUMNS)).execute(check_error=True)
        return [InterfaceState.from_record(r, bridge=bridge_of.get(r["name"], "")) for r in records]

    def interfaces_with(self, **external_ids: str) -> list[str]:
        """Names of the Interfaces whose external_ids contain all of ``external_ids``."""
        command = self._api.db_find("Interface", ("external_ids", "=", dict(external_ids)), columns=["name"])
        return [str(r["name"]) for r in command.execute(check_error=True)]

    def interface_states_with(self, **external_ids: str) -> list[InterfaceState]:
        command = self._api.db_find("Interface", ("external_ids", "=", dict(external_ids)),
                                    columns=list(_INTERFACE_COLUMNS))
        return [InterfaceState.from_record(r) for r in command.execute(check_error=True)]

    def set_interface_external_ids(self, name: str, **external_ids: str) -> None:
        self._api.db_set("Interface", name, ("external_ids", dict(external_ids))).execute(check_error=True)

    def switch_external_ids(self) -> dict[str, str]:
        records = self._api.db_list("Open_vSwitch", columns=["external_ids"]).execute(check_error=True)
        return dict(records[0]["external_ids"]) if records else {}

    @contextlib.contextmanager
    def watch_interface(
        self, name: str, done: Callable[[InterfaceState], bool]
    ) -> Iterator[Callable[[float], InterfaceState | None]]:
        """Watch Interface ``name`` from now on.

        Yields ``wait(timeout)``, which returns the first state satisfying ``done`` (the current one
        included), or None when ``timeout`` runs out.
        """
        event = InterfaceEvent(name, done)
        self._events.watch_event(event)

        def wait(timeout: float) -> InterfaceState | None:
            deadline = time.monotonic() + timeout
            # Read after the watch is armed: a change before it is seen here, a change after it fires the event.
            current = self.interface(name)
            if current is not None and done(current):
                return current
            return event.wait_for(deadline - time.monotonic())

        try:
            yield wait
        finally:
            self._events.unwatch_event(event)


_INTERFACE_COLUMNS = ("name", "external_ids", "ofport", "error", "mtu")


_shared_lock = threading.Lock()
_shared: dict[str, tuple[Ovsdb, int]] = {}


def acquire(remote: str, timeout: float) -> Ovsdb:
    """The process's connection to ``remote``, connecting on first use."""
    with _shared_lock:
        db, users = _shared.get(remote, (None, 0))
        if db is None:
            db = Ovsdb(remote, timeout)
        _shared[remote] = (db, users + 1)
        return db


def release(db: Ovsdb) -> None:
    with _shared_lock:
        current, users = _shared.get(db.remote, (None, 0))
        if current is not db:
            return
        if users > 1:
            _shared[db.remote] = (db, users - 1)
            return
        del _shared[db.remote]
    db.stop()
