"""The daemon side of ``courier-cni``: each CNI call becomes an attachment call on the core, its outcome a CNI
result (in the caller's cniVersion) or error object."""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from courier import logcontext, metrics
from courier.cni import spec
from courier.cni.errors import CniFailure, error_object
from courier.cni.models import CniCall
from courier.driver.attachments import Attached, Attachments, AttachSpec

LOG = logging.getLogger(__name__)


class CniDispatcher:
    def __init__(self, attachments: Attachments):
        self._attachments = attachments
        self._handlers: dict[str, Callable[[CniCall], dict[str, Any]]] = {
            "CNI.Add": self.add, "CNI.Del": self.delete, "CNI.Check": self.check, "CNI.Status": self.status,
            "CNI.Gc": self.gc}

    def dispatch(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        command = method.removeprefix("CNI.").upper()
        version = spec.LATEST
        try:
            handler = self._handlers.get(method)
            if handler is None:
                raise CniFailure(spec.INVALID_ENVIRONMENT, f"unknown CNI command {command!r}")
            try:
                payload = json.loads(body or b"{}")
            except ValueError as exc:
                raise CniFailure(spec.DECODE_FAILURE, "the request is not JSON", str(exc)) from None
            if isinstance(payload, dict) and isinstance(payload.get("config"), dict):
                version = str(payload["config"].get("cniVersion") or version)
            call = CniCall.model_validate(payload)
            with logcontext.bind_request(method, {"ContainerID": call.containerId}):
                status, answer = 200, handler(call)
        except Exception as exc:
            status, answer = error_object(exc, command, version)
        metrics.REQUESTS.labels(method=method if method in self._handlers else "unknown", status=str(status)).inc()
        metrics.REQUEST_SECONDS.labels(method=method).observe(time.perf_counter() - started)
        return status, answer

    def add(self, call: CniCall) -> dict[str, Any]:
        attached = self._attachments.add(_spec(call))
        return _result(call, attached)

    def delete(self, call: CniCall) -> dict[str, Any]:
        if call.config.neutron_network():  # a config without a network never made anything: nothing to undo
            self._attachments.delete(_spec(call))
        return {}

    def check(self, call: CniCall) -> dict[str, Any]:
        if call.config.prevResult is None and call.config.cniVersion not in ("0.3.0", "0.3.1"):
            raise CniFailure(spec.INVALID_CONFIG, "CHECK needs prevResult")
        self._attachments.check(_spec(call))
        return {}

    def status(self, call: CniCall) -> dict[str, Any]:
        return {}  # the daemon answers: ADDs can be served (a Neutron outage is retried per call)

    def gc(self, call: CniCall) -> dict[str, Any]:
        network = call.config.neutron_network()
        if network and call.config.valid_attachments is not None:
            keep = {(a.get("containerID", ""), a.get("ifname", "")) for a in call.config.valid_attachments}
            removed = self._attachments.collect(network, keep)
            LOG.info("CNI GC of %s: %d attachment(s) removed", network, removed)
        return {}


def _spec(call: CniCall) -> AttachSpec:
    network = call.config.neutron_network()
    if not network:
        raise CniFailure(spec.INVALID_CONFIG, f"network {call.config.name!r} names no Neutron network",
                         'add "network": "<Neutron network id or name>" to the plugin configuration')
    args = call.cni_args()
    runtime_ips = call.config.runtimeConfig.get("ips") or call.config.args.get("cni", {}).get("ips") or []
    address = args.get("IP") or (str(runtime_ips[0]) if runtime_ips else None)
    mac = args.get("MAC") or call.config.runtimeConfig.get("mac") or None
    if address:
        try:
            address = str(ipaddress.ip_interface(address).ip)
        except ValueError:
            raise CniFailure(spec.INVALID_CONFIG, f"IP {address!r} is not an IP address") from None
    return AttachSpec(container_id=call.containerId, ifname=call.ifname, netns=call.netns, network=network,
                      address=address, mac=str(mac).lower() if mac else None)


def _result(call: CniCall, attached: Attached) -> dict[str, Any]:
    """The spec's result for the caller's version, chained after ``prevResult`` when there is one."""
    version = call.config.cniVersion
    previous = call.config.prevResult or {}
    interfaces = list(previous.get("interfaces") or [])
    index = len(interfaces)
    interfaces.append({"name": call.ifname, "mac": attached.mac, "sandbox": call.netns})
    gateways = {g.version: str(g) for g in attached.gateways}
    ips = list(previous.get("ips") or [])
    for address in attached.addresses:
        entry: dict[str, Any] = {"address": str(address), "interface": index}
        if address.version in gateways:
            entry["gateway"] = gateways[address.version]
        if version.startswith("0.3") or version == "0.4.0":
            entry["version"] = str(address.version)
        ips.append(entry)
    routes = list(previous.get("routes") or [])
    routes += [{"dst": "0.0.0.0/0" if v == 4 else "::/0", "gw": gw} for v, gw in sorted(gateways.items())]
    routes += [{"dst": str(dst), "gw": str(hop)} for dst, hop in attached.routes]
    result: dict[str, Any] = {"cniVersion": version, "interfaces": interfaces, "ips": ips, "routes": routes}
    nameservers = list((previous.get("dns") or {}).get("nameservers") or []) + list(attached.dns)
    result["dns"] = {**(previous.get("dns") or {}), "nameservers": nameservers} if nameservers else \
        dict(previous.get("dns") or {})
    return result
