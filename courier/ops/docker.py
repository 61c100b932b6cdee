"""The local Docker daemon's networks and endpoints, read over its HTTP API with the standard library only.

A ``DockerView`` is a snapshot: what Docker holds at one moment, which ``gc`` and ``status`` compare with
Neutron and the host.
"""

from __future__ import annotations

import dataclasses
import http.client
import ipaddress
import json
import os
import socket
from typing import Any
from urllib.parse import quote, urlparse

DEFAULT_HOST = "unix:///var/run/docker.sock"


class DockerError(Exception):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class DockerClient:
    """GETs against the Engine API (unix:// or tcp://); no TLS, no docker SDK."""

    def __init__(self, host: str | None = None, timeout: float = 15.0):
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self._timeout = timeout
        url = urlparse(self.host)
        if url.scheme == "unix":
            self._unix: str | None = url.path
        elif url.scheme in ("tcp", "http"):
            self._unix = None
            self._netloc = (url.hostname or "localhost", url.port or 2375)
        else:
            raise DockerError(f"Docker host {self.host}: only unix:// and tcp:// (without TLS) are supported")

    def _connection(self) -> http.client.HTTPConnection:
        if self._unix is not None:
            return _UnixConnection(self._unix, self._timeout)
        return http.client.HTTPConnection(*self._netloc, timeout=self._timeout)

    def get(self, path: str) -> Any:
        conn = self._connection()
        try:
            conn.request("GET", path, headers={"Host": "docker"})
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise DockerError(f"cannot reach Docker at {self.host}: {exc}") from exc
        finally:
            conn.close()
        if resp.status != 200:
            raise DockerError(f"Docker at {self.host}: GET {path} answered {resp.status}: "
                              f"{body.decode(errors='replace').strip()}")
        return json.loads(body)

    def version(self) -> dict[str, Any]:
        return dict(self.get("/version"))

    def networks(self) -> list[dict[str, Any]]:
        return list(self.get("/networks"))

    def network(self, network_id: str) -> dict[str, Any]:
        return dict(self.get(f"/networks/{quote(network_id)}"))


@dataclasses.dataclass(frozen=True)
class DockerEndpoint:
    endpoint_id: str
    network_id: str
    container: str  # container name ("" for an endpoint without a sandbox)
    container_id: str
    mac_address: str
    addresses: tuple[str, ...]  # bare IP addresses


@dataclasses.dataclass(frozen=True)
class DockerNetwork:
    id: str
    name: str
    driver: str
    ipam_driver: str
    endpoints: tuple[DockerEndpoint, ...] = ()


@dataclasses.dataclass(frozen=True)
class DockerView:
    host: str
    networks: dict[str, DockerNetwork]  # by full network id

    @property
    def endpoints(self) -> dict[str, DockerEndpoint]:
        return {e.endpoint_id: e for n in self.networks.values() for e in n.endpoints}

    def has_network(self, docker_network_id: str | None) -> bool:
        return docker_network_id is not None and docker_network_id in self.networks

    def holds_address(self, docker_network_id: str | None, address: str) -> bool:
        """Whether a Docker endpoint has ``address`` (on that network, or on any when it is unknown)."""
        nets = [self.networks[docker_network_id]] if docker_network_id in self.networks else (
            [] if docker_network_id else list(self.networks.values()))
        return any(address in e.addresses for n in nets for e in n.endpoints)


def _bare(address: str) -> str:
    return str(ipaddress.ip_interface(address).ip) if address else ""


def _endpoint(network_id: str, key: str, raw: dict[str, Any]) -> DockerEndpoint:
    addresses = tuple(a for a in (_bare(raw.get("IPv4Address", "")), _bare(raw.get("IPv6Address", ""))) if a)
    container_id = "" if key.startswith("ep-") else key
    return DockerEndpoint(endpoint_id=raw.get("EndpointID", ""), network_id=network_id,
                          container=raw.get("Name", ""), container_id=container_id,
                          mac_address=(raw.get("MacAddress") or "").lower(), addresses=addresses)


def snapshot(client: DockerClient) -> DockerView:
    """Every network with its endpoints (one inspect per network: the list call leaves endpoints out)."""
    networks = {}
    for summary in client.networks():
        try:
            detail = client.network(summary["Id"])
        except DockerError:
            continue  # removed between the two calls
        endpoints = tuple(_endpoint(detail["Id"], key, raw) for key, raw in (detail.get("Containers") or {}).items())
        networks[detail["Id"]] = DockerNetwork(id=detail["Id"], name=detail.get("Name", ""),
                                               driver=detail.get("Driver", ""),
                                               ipam_driver=(detail.get("IPAM") or {}).get("Driver", ""),
                                               endpoints=endpoints)
    return DockerView(host=client.host, networks=networks)
