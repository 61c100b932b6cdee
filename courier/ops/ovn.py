"""The OVN Southbound chassis list, read with ovsdbapp (what ``ovn-sbctl list Chassis`` shows)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from ovsdbapp.backend.ovs_idl import connection, idlutils
from ovsdbapp.schema.ovn_southbound import impl_idl


@dataclasses.dataclass(frozen=True)
class Chassis:
    name: str  # ovn-controller's system-id: what binding:host_id must equal for ML2/OVN
    hostname: str


def chassis(remote: str, timeout: float = 5.0) -> list[Chassis]:
    """Chassis rows of the Southbound DB at ``remote`` (e.g. tcp:127.0.0.1:6642); bounded by ``timeout``."""
    result: list[Chassis] = []
    failure: list[BaseException] = []

    def read() -> None:
        conn = None
        try:
            helper = idlutils.get_schema_helper(remote, "OVN_Southbound")
            helper.register_columns("Chassis", ["name", "hostname"])
            conn = connection.Connection(connection.OvsdbIdl(remote, helper), timeout=timeout)
            # ovsdbapp keeps the connection on the API class: a class of our own keeps it apart.
            api: Any = type("CourierSbApi", (impl_idl.OvnSbApiIdlImpl,), {})(conn)
            rows = api.chassis_list().execute(check_error=True)
            result.extend(Chassis(name=r.name, hostname=r.hostname) for r in rows)
        except BaseException as exc:
            failure.append(exc)
        finally:
            if conn is not None:
                conn.stop(timeout=2)

    # The schema fetch blocks on the socket: a thread bounds it when the remote does not answer.
    worker = threading.Thread(target=read, name="courier-ovn-sb", daemon=True)
    worker.start()
    worker.join(timeout + 2)
    if worker.is_alive():
        raise TimeoutError(f"OVN Southbound DB at {remote} did not answer within {timeout:g} s")
    if failure:
        raise failure[0]
    return result


def first_remote(ovn_remote: str) -> str:
    """ovn-controller accepts a comma-separated list of remotes: the first is enough to read."""
    return ovn_remote.split(",")[0].strip()
