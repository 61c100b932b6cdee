"""Helpers for the binding integration tests: real kernel devices, the real local OVS, and cleanup.

Every device and OVS port these tests make is named from an endpoint id starting with ``cbtest``, and is
removed after each test even when it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from oslo_config import cfg

from courier.binding.vif import VIF, device_names
from courier.config.options import register_opts
from tests import testkit

PREFIX = "cbtest"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network devices")


def run(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30).stdout.strip()


def ovs_running() -> bool:
    if shutil.which("ovs-vsctl") is None:
        return False
    return subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True, check=False).returncode == 0


needs_ovs = pytest.mark.skipif(not ovs_running(), reason="OVS is not running (scripts/stack start)")


def make_conf(**overrides: Any) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([])
    for key, value in overrides.items():
        group, _, name = key.rpartition("__")
        conf.set_override(name, value, group=group or None)
    return conf


def new_vif(**fields: Any) -> VIF:
    values: dict[str, Any] = {
        "endpoint_id": PREFIX + uuid.uuid4().hex,
        "port_id": str(uuid.uuid4()),
        "network_id": PREFIX + uuid.uuid4().hex[:26],
        "mac_address": "fa:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3)),
        "mtu": 1442,
        "vif_type": "ovs",
    }
    values.update(fields)
    return VIF(**values)


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def link(name: str) -> dict[str, Any]:
    return json.loads(run("ip", "-details", "-json", "link", "show", "dev", name))[0]


def sysctl(relative: str) -> str:
    return Path("/proc/sys/net", relative).read_text().strip()


def ovs_interface(name: str) -> dict[str, str] | None:
    """The Interface row's columns as ovs-vsctl prints them, or None if there is no such port."""
    out = subprocess.run(["ovs-vsctl", "--timeout=5", "--format=json", "list", "Interface", name],
                         capture_output=True, text=True, check=False, timeout=30)
    if out.returncode != 0:
        return None
    table = json.loads(out.stdout)
    return dict(zip(table["headings"], table["data"][0], strict=True))


def ovs_map(value: Any) -> dict[str, str]:
    """ovs-vsctl JSON ["map", [[k, v], ...]] to a dict."""
    return dict(value[1])


def ovs_port_names() -> set[str]:
    return set(run("ovs-vsctl", "--timeout=5", "--columns=name", "--bare", "list", "Port").split())


class Cleanup:
    """Removes the devices and OVS ports of the VIFs a test binds, whatever happened."""

    def __init__(self) -> None:
        self.vifs: list[VIF] = []
        self.bridges: list[str] = []

    def add(self, vif: VIF) -> VIF:
        self.vifs.append(vif)
        return vif

    def names(self, vif: VIF) -> list[str]:
        return [vif.host_ifname, vif.container_ifname, *device_names(vif.port_id).hybrid]

    def __call__(self) -> None:
        for vif in self.vifs:
            names = self.names(vif)
            if ovs_running():
                for name in (names[0], names[4]):
                    subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-port", name],
                                   capture_output=True, check=False)
            for name in [*names, *self.bridges]:
                if link_exists(name):
                    subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


NEUTRON_URL = testkit.NEUTRON_URL


def neutron_running() -> bool:
    try:
        with urllib.request.urlopen(NEUTRON_URL + "/", timeout=5) as response:
            return response.status < 400
    except OSError:
        return False


needs_neutron = pytest.mark.skipif(not neutron_running(), reason=f"no Neutron at {NEUTRON_URL} (scripts/stack start)")


class Neutron:
    """Just enough of the Neutron API (noauth) for these tests; deletes what it created on ``cleanup()``."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(NEUTRON_URL + "/v2.0/" + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else {}

    def create(self, kind: str, **attrs: Any) -> dict[str, Any]:
        resource: dict[str, Any] = self.call("POST", kind + "s", {kind: attrs})[kind]
        self.created.append((kind, resource["id"]))
        return resource

    def get(self, kind: str, resource_id: str) -> dict[str, Any]:
        return self.call("GET", f"{kind}s/{resource_id}")[kind]

    def cleanup(self) -> None:
        """Delete everything created, newest first; try them all, then report what could not be deleted."""
        failed = []
        for kind, resource_id in reversed(self.created):
            try:
                self.call("DELETE", f"{kind}s/{resource_id}")
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    failed.append(f"{kind} {resource_id}: {exc}")
            except OSError as exc:
                failed.append(f"{kind} {resource_id}: {exc}")
        self.created.clear()
        if failed:
            raise RuntimeError("Neutron test resources left behind: " + "; ".join(failed))


def vif_from_port(port: dict[str, Any], network: dict[str, Any], endpoint_id: str) -> VIF:
    return VIF(endpoint_id=endpoint_id, port_id=port["id"], network_id=port["network_id"],
               mac_address=port["mac_address"], mtu=network["mtu"], vif_type=port["binding:vif_type"],
               vif_details=port["binding:vif_details"], project_id=port["project_id"])


class Namespaces:
    """Network namespaces standing in for containers."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, name: str) -> str:
        run("ip", "netns", "add", name)
        self.names.append(name)
        return name

    def cleanup(self) -> None:
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
