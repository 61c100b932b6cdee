"""What the CNI specification fixes: versions, commands, well-known error codes. Standard library only: the
executable imports it on every call."""

from __future__ import annotations

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")
DEFAULT_SOCKET = "/run/courier/cni.sock"  # [cni] socket_path; a network config may name another (daemonSocket)

# Error codes 1-99 are the spec's; 100 and up are the plugin's own.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50  # STATUS: the plugin cannot take ADDs now
ADDRESS_IN_USE = 100
NO_ADDRESS_LEFT = 101
BINDING_FAILED = 102
NEUTRON_FAILED = 103
INTERNAL = 110


def error(code: int, msg: str, details: str = "", version: str = LATEST) -> dict[str, object]:
    body: dict[str, object] = {"cniVersion": version, "code": code, "msg": msg}
    if details:
        body["details"] = details
    return body
