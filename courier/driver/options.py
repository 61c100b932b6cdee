"""kuryr-libnetwork's ``-o`` and ``--ipam-opt`` keys, read into typed values in one place."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from typing import Any

from courier.exceptions import InvalidRequest

NET_UUID = "neutron.net.uuid"
NET_NAME = "neutron.net.name"
NET_SHARED = "neutron.net.shared"

GENERIC = "com.docker.network.generic"
ENABLE_IPV4 = "com.docker.network.enable_ipv4"
ENABLE_IPV6 = "com.docker.network.enable_ipv6"
MAC_OPTION = "com.docker.network.endpoint.macaddress"
REQUEST_ADDRESS_TYPE = "RequestAddressType"
GATEWAY_REQUEST = "com.docker.network.gateway"

_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


def parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidRequest(f"option {key}={value!r} is not a boolean (use true or false)")


@dataclasses.dataclass(frozen=True)
class PoolOptions:
    """--ipam-opt (RequestPool), and the same keys given with -o (CreateNetwork), for one IP version."""

    pool_uuid: str | None = None
    pool_name: str | None = None
    subnet_uuid: str | None = None
    subnet_name: str | None = None
    shared: bool | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any] | None, v6: bool) -> PoolOptions:
        opts = options or {}
        family = "v6." if v6 else ""

        def text(key: str) -> str | None:
            value = opts.get(key)
            return str(value) if value not in (None, "") else None

        shared = opts.get(NET_SHARED)
        return cls(pool_uuid=text(f"neutron.pool.{family}uuid"), pool_name=text(f"neutron.pool.{family}name"),
                   subnet_uuid=text(f"neutron.subnet.{family}uuid"), subnet_name=text(f"neutron.subnet.{family}name"),
                   shared=None if shared in (None, "") else parse_bool(NET_SHARED, shared))


@dataclasses.dataclass(frozen=True)
class NetworkOptions:
    net_uuid: str | None
    net_name: str | None
    shared: bool | None
    enable_ipv4: bool
    enable_ipv6: bool
    v4: PoolOptions
    v6: PoolOptions

    @classmethod
    def parse(cls, options: Mapping[str, Any] | None) -> NetworkOptions:
        opts = options or {}
        generic = opts.get(GENERIC) or {}
        if not isinstance(generic, Mapping):
            raise InvalidRequest(f"{GENERIC} must be an object of -o options")
        uuid, name = generic.get(NET_UUID) or None, generic.get(NET_NAME) or None
        if uuid and name:
            raise InvalidRequest(f"give either {NET_UUID} or {NET_NAME}, not both")
        shared = generic.get(NET_SHARED)
        return cls(net_uuid=str(uuid) if uuid else None, net_name=str(name) if name else None,
                   shared=None if shared in (None, "") else parse_bool(NET_SHARED, shared),
                   enable_ipv4=parse_bool(ENABLE_IPV4, opts.get(ENABLE_IPV4, True)),
                   enable_ipv6=parse_bool(ENABLE_IPV6, opts.get(ENABLE_IPV6, False)),
                   v4=PoolOptions.parse(generic, v6=False), v6=PoolOptions.parse(generic, v6=True))


def normalize_mac(value: str, source: str) -> str:
    """Docker sends MACs as colon text, or (endpoint options) as base64 of the 6 bytes."""
    text = value.strip()
    parts = text.replace("-", ":").split(":")
    if len(parts) == 6 and all(len(p) == 2 for p in parts):
        try:
            bytes.fromhex("".join(parts))
        except ValueError:
            pass
        else:
            return ":".join(parts).lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 6:
        return ":".join(f"{b:02x}" for b in raw)
    raise InvalidRequest(f"{source}: {value!r} is not a MAC address")
