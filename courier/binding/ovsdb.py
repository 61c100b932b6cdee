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


@dataclasses.dataclass(frozen=True)
class InterfaceState:
    name: str
    external_ids: Mapping[str, str]
    ofport: int | None  # None: not attached yet; -1: OVS failed to attach it
    error: str
    mtu: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> InterfaceState:
        return cls(name=row.name, external_ids=dict(row.external_ids), ofport=_single(row.ofport),
                   error=_single(row.error) or "", mtu=_single(row.mtu))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> InterfaceState:
        return cls(name=record["name"], external_ids=dict(record["external_ids"]),
                   ofport=_single(record["ofport"]), error=_single(record["error"]) or "",
                   mtu=_single(record["mtu"]))


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


class _InterfaceEvent(idl_event.RowEvent):
    """Fires once Interface ``name`` satisfies ``done`` (evaluated on the IDL thread, on each change)."""

    def __init__(self, name: str, done: Callable[[InterfaceState], bool]) -> None:
        super().__init__((self.ROW_CREATE, self.ROW_UPDATE), "Interface", (("name", "=", name),))
        self.event_name = f"courier-interface-{name}"
        self._done = done
        self.fired = threading.Event()
        self.state: InterfaceState | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        # Two binds watching the same name must not collapse into one event in the handler's set.
        return (*super().key, id(self))

    def match_fn(self, event: str, row: Any, old: Any) -> bool:
        return self._done(InterfaceState.from_row(row))

    def run(self, event: str, row: Any, old: Any) -> None:
        self.state = InterfaceState.from_row(row)
        self.fired.set()


class Ovsdb:
    def __init__(self, remote: str, timeout: float) -> None:
        self.remote = remote
        try:
            helper = idlutils.get_schema_helper(remote, SCHEMA)
            for table, columns in COLUMNS.items():
                helper.register_columns(table, columns)
            self._idl = _NotifyingIdl(remote, helper)
            # ovsdbapp keeps the connection on the API class: a class of our own per connection keeps it apart
            # from any other ovsdbapp user in the process and lets a later Ovsdb start afresh.
            api_class = type("CourierVswitchApi", (impl_idl.OvsdbIdl,), {})
            self.api: Any = api_class(connection.Connection(self._idl, timeout=timeout))
        except Exception as exc:
            raise BindingError(f"Cannot connect to the local OVSDB at {remote} ([courier] ovsdb_connection): "
                               f"{exc}. Is ovsdb-server running?") from exc

    def stop(self) -> None:
        self.api.ovsdb_connection.stop(timeout=5)
        self._idl.notify_handler.shutdown()

    def bridge_exists(self, bridge: str) -> bool:
        return bool(self.api.br_exists(bridge).execute(check_error=True))

    def add_port(self, bridge: str, name: str, external_ids: Mapping[str, str], mtu: int) -> None:
        """Add port ``name`` to ``bridge`` and set its Interface columns, in one transaction; idempotent."""
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.add_port(bridge, name, may_exist=True))
            txn.add(self.api.db_set("Interface", name, ("external_ids", dict(external_ids)),
                                    ("mtu_request", mtu), if_exists=False))

    def del_ports(self, *names: str) -> None:
        """Remove the ports (and their interfaces) from whichever bridge holds them; skip absent ones."""
        with self.api.transaction(check_error=True) as txn:
            for name in names:
                txn.add(self.api.del_port(name, if_exists=True))

    def interface(self, name: str) -> InterfaceState | None:
        columns = ["name", "external_ids", "ofport", "error", "mtu"]
        command = self.api.db_list("Interface", [name], columns=columns, if_exists=True)
        records = command.execute(check_error=True)
        return InterfaceState.from_record(records[0]) if records else None

    def interfaces_with(self, **external_ids: str) -> list[str]:
        """Names of the Interfaces whose external_ids contain all of ``external_ids``."""
        command = self.api.db_find("Interface", ("external_ids", "=", dict(external_ids)), columns=["name"])
        return [str(r["name"]) for r in command.execute(check_error=True)]

    def interface_states_with(self, **external_ids: str) -> list[InterfaceState]:
        command = self.api.db_find("Interface", ("external_ids", "=", dict(external_ids)),
                                   columns=["name", "external_ids", "ofport", "error", "mtu"])
        return [InterfaceState.from_record(r) for r in command.execute(check_error=True)]

    def set_interface_external_ids(self, name: str, **external_ids: str) -> None:
        self.api.db_set("Interface", name, ("external_ids", dict(external_ids))).execute(check_error=True)

    def switch_external_ids(self) -> dict[str, str]:
        records = self.api.db_list("Open_vSwitch", columns=["external_ids"]).execute(check_error=True)
        return dict(records[0]["external_ids"]) if records else {}

    @contextlib.contextmanager
    def watch_interface(
        self, name: str, done: Callable[[InterfaceState], bool]
    ) -> Iterator[Callable[[float], InterfaceState | None]]:
        """Watch Interface ``name`` from now on.

        Yields ``wait(timeout)``, which returns the first state satisfying ``done`` (the current one
        included), or None when ``timeout`` runs out.
        """
        event = _InterfaceEvent(name, done)
        handler = self._idl.notify_handler
        handler.watch_event(event)

        def wait(timeout: float) -> InterfaceState | None:
            deadline = time.monotonic() + timeout
            current = self.interface(name)  # it may have been done before the watch started
            if current is not None and done(current):
                return current
            if event.fired.wait(max(0.0, deadline - time.monotonic())):
                return event.state
            return None

        try:
            yield wait
        finally:
            handler.unwatch_event(event)


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
