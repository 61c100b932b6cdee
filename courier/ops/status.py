"""``courier status``: Docker networks and endpoints next to their Neutron resources, binding state and OVS ports.

Neutron is the reference (networks with kuryr's Docker-id tags, their subnets, ``compute:kuryr`` ports with
their binding); Docker and the local OVSDB are joined in when reachable. Exit status 1 when something does not
line up (an endpoint without a port, a port not ACTIVE or not bound, a local port without its OVS interface...).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from courier.neutron import tags
from courier.ops import common
from courier.ops.docker import DockerEndpoint, DockerNetwork, DockerView

if TYPE_CHECKING:
    from courier.neutron import models as nm
    from courier.ops.host import OvsInterface

NOT_BOUND = ("", "unbound", "binding_failed")


def collect(neutron: Any, docker: DockerView | None, interfaces: list[OvsInterface] | None, host_id: str,
            driver_name: str) -> dict[str, Any]:
    """The status document (what ``--json`` prints)."""
    mark = tags.host_tag(host_id)
    by_docker_id: dict[str, nm.Network] = {}
    for net in neutron.list_networks():
        for docker_id in tags.docker_ids_from_tags(net.tags):  # several on a network shared across hosts
            by_docker_id[docker_id] = net
    docker_nets = docker.networks if docker else {}
    entries: list[tuple[DockerNetwork | None, nm.Network | None]] = []
    for docker_id, dnet in docker_nets.items():
        net = by_docker_id.get(docker_id)
        if net is not None or dnet.driver == driver_name:
            entries.append((dnet, net))
    for docker_id, net in by_docker_id.items():
        if docker_id not in docker_nets and mark in net.tags and all(n is not net for _, n in entries):
            entries.append((None, net))
    all_ports = neutron.list_ports(device_owner=tags.DEVICE_OWNER)
    listed = {net.id for _, net in entries if net is not None}
    cni_networks = {p.network_id for p in all_ports if tags.CNI_ATTACHMENT in p.tags and p.host_id == host_id}
    if cni_networks - listed:  # networks only CNI attachments use (no Docker network behind them)
        entries += [(None, n) for n in neutron.list_networks() if n.id in cni_networks - listed]
    wanted = {net.id for _, net in entries if net is not None}
    ports = [p for p in all_ports if p.network_id in wanted]
    ovs = {i.port_id: i for i in interfaces or [] if i.port_id}
    networks = [_network(neutron, dnet, net, ports, ovs, interfaces is not None, host_id, docker is not None)
                for dnet, net in sorted(entries, key=lambda e: (e[0].name if e[0] else "~", e[1].id if e[1] else ""))]
    problems = [p for n in networks for p in n["problems"]]
    return {"host": host_id, "docker_host": docker.host if docker else None, "networks": networks,
            "problems": problems}


def _network(neutron: Any, dnet: DockerNetwork | None, net: nm.Network | None, ports: list[nm.Port],
             ovs: dict[str, OvsInterface], ovs_known: bool, host_id: str, docker_known: bool) -> dict[str, Any]:
    problems: list[str] = []
    label = dnet.name if dnet else (net.name if net else "?")
    entry: dict[str, Any] = {
        "docker": None if dnet is None else {"id": dnet.id, "name": dnet.name, "driver": dnet.driver,
                                             "ipam_driver": dnet.ipam_driver},
        "neutron": None, "subnets": [], "endpoints": [], "other_ports": [], "problems": problems,
    }
    if net is None:
        problems.append(f"Docker network {label} (driver {dnet.driver if dnet else '?'}) has no Neutron network")
    else:
        entry["neutron"] = {"id": net.id, "name": net.name, "mtu": net.mtu, "created_at": net.created_at,
                            "existing": any(t.startswith(tags.EXISTING_NETWORK) for t in net.tags),
                            "host_mark": next((t[len(tags.HOST):] for t in net.tags if t.startswith(tags.HOST)),
                                              None)}
        entry["subnets"] = [{"id": s.id, "name": s.name, "cidr": str(s.cidr),
                             "gateway_ip": str(s.gateway_ip) if s.gateway_ip else None,
                             "subnetpool_id": s.subnetpool_id}
                            for s in sorted(neutron.list_subnets(network_id=net.id), key=lambda s: str(s.cidr))]
        if dnet is None and docker_known and tags.docker_id_from_tags(net.tags):
            fate = ("it is pre-existing: courier gc leaves it alone" if entry["neutron"]["existing"]
                    else "courier gc removes it")
            problems.append(f"Neutron network {net.id} ({net.name}) belongs to Docker network "
                            f"{tags.docker_id_from_tags(net.tags)} that Docker no longer has: {fate}")
    on_net = [p for p in ports if net is not None and p.network_id == net.id]
    # a network shared across hosts: other hosts' ports are their Courier's business (counted, never listed)
    mine = [p for p in on_net if p.host_id in (host_id, "")]
    entry["other_hosts_ports"] = len(on_net) - len(mine)
    used: set[str] = set()
    for ep in (dnet.endpoints if dnet else ()):
        port = _port_of(ep, mine)
        if port is not None:
            used.add(port.id)
        entry["endpoints"].append(_endpoint(ep, port, ovs, ovs_known, host_id, problems))
    entry["pool_ports"] = 0
    entry["cni_attachments"] = []
    for port in mine:
        if port.id in used:
            continue
        if tags.CNI_ATTACHMENT in port.tags:  # a CNI runtime's container: its runtime knows it, not Docker
            namespace = next((t[len(tags.CNI_NETNS):] for t in port.tags if t.startswith(tags.CNI_NETNS)), None)
            entry["cni_attachments"].append({**_port(port, ovs.get(port.id)), "netns": namespace})
            continue
        if any(t.startswith("courier.pool:") for t in port.tags) and not port.device_id:
            entry["pool_ports"] += 1  # idle in the warm pool: ready for the next container, not a problem
            continue
        entry["other_ports"].append(_port(port, ovs.get(port.id)))
        if port.host_id == host_id and docker_known and tags.EXISTING_PORT not in port.tags:
            problems.append(f"port {port.id} on {label} is bound to this host but no Docker endpoint uses it "
                            "(courier gc removes it once it is older than --min-age)")
    return entry


def _port_of(ep: DockerEndpoint, ports: list[nm.Port]) -> nm.Port | None:
    by_device = [p for p in ports if p.device_id == ep.endpoint_id]
    if by_device:
        return by_device[0]
    return next((p for p in ports if {str(f.ip_address) for f in p.fixed_ips} & set(ep.addresses)), None)


def _port(port: nm.Port, iface: OvsInterface | None) -> dict[str, Any]:
    return {"id": port.id, "name": port.name, "status": port.status, "vif_type": port.vif_type,
            "host": port.host_id, "mac_address": port.mac_address, "device_id": port.device_id,
            "fixed_ips": [str(f.ip_address) for f in port.fixed_ips],
            "adopted": tags.EXISTING_PORT in port.tags, "ovs": iface.as_dict() if iface else None}


def _endpoint(ep: DockerEndpoint, port: nm.Port | None, ovs: dict[str, OvsInterface], ovs_known: bool,
              host_id: str, problems: list[str]) -> dict[str, Any]:
    who = f"endpoint {ep.endpoint_id[:12]} ({ep.container or 'no container'})"
    doc: dict[str, Any] = {"endpoint_id": ep.endpoint_id, "container": ep.container, "addresses": list(ep.addresses),
           "mac_address": ep.mac_address, "port": None}
    if port is None:
        problems.append(f"{who} has no Neutron port")
        return doc
    iface = ovs.get(port.id)
    doc["port"] = _port(port, iface)
    if port.vif_type in NOT_BOUND:
        problems.append(f"{who}: port {port.id} is not bound (vif_type {port.vif_type or 'unset'}, host "
                        f"{port.host_id or 'unset'}): run courier doctor")
    elif port.status != "ACTIVE":
        problems.append(f"{who}: port {port.id} is {port.status}, not ACTIVE")
    if port.host_id and port.host_id != host_id:
        problems.append(f"{who}: port {port.id} is bound to host {port.host_id}, not {host_id}")
    elif ovs_known and port.vif_type == "ovs" and iface is None:
        problems.append(f"{who}: port {port.id} has no OVS interface on this host")
    return doc


# --- command ------------------------------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    p = sub.add_parser("status", help="Docker networks and endpoints with their Neutron ports and binding state",
                       description="Show each Docker network Courier serves with its Neutron network, subnets, "
                                   "and per endpoint the Neutron port, its binding and the local OVS interface. "
                                   "Exit status: 0 all consistent, 1 problems found (listed) or a failure.")
    common.add_common(p, docker=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from courier.config.options import binding_host_id
    from courier.neutron.api import Neutron
    from courier.neutron.connection import connect
    from courier.ops.docker import DockerClient, DockerError, snapshot
    from courier.ops.host import LocalHost

    common.setup_logging(args)
    conf = common.load_config(args)
    host_id = binding_host_id(conf)
    errors = []
    client = DockerClient(args.docker_host)
    docker: DockerView | None
    try:
        docker = snapshot(client)
    except DockerError as exc:
        docker, errors = None, [f"{exc}: Docker's side is not shown"]
    local = LocalHost(conf)
    interfaces: list[OvsInterface] | None
    try:
        interfaces = local.ovs_interfaces()
    except Exception as exc:
        interfaces = None
        errors.append(f"cannot read the local OVSDB at {local.ovsdb_remote}: {exc}")
    finally:
        local.close()
    doc = collect(Neutron(connect(conf)), docker, interfaces, host_id, conf.courier.driver_name)
    doc["problems"] = errors + doc["problems"]
    if args.json:
        common.print_json(doc)
    else:
        _print(doc)
    return common.FINDINGS if doc["problems"] else common.OK


def _print(doc: dict[str, Any]) -> None:
    print(f"binding host {doc['host']}, Docker {doc['docker_host'] or 'unreachable'}")
    if not doc["networks"]:
        print("no Courier networks")
    for n in doc["networks"]:
        d, q = n["docker"], n["neutron"]
        head = f"\nNETWORK {d['name']} ({d['id'][:12]}, driver {d['driver']})" if d else "\nNETWORK (not in Docker)"
        if q:
            head += f" -> Neutron {q['id']} {q['name']} mtu {q['mtu']}" + (" [pre-existing]" if q["existing"] else "")
        print(head if q else head + " -> no Neutron network")
        for s in n["subnets"]:
            pool = s["subnetpool_id"] or "-"
            print(f"  subnet {s['cidr']} gateway {s['gateway_ip'] or '-'} ({s['id']}, pool {pool})")
        rows = [["CONTAINER", "ENDPOINT", "PORT", "ADDRESSES", "STATUS", "VIF", "HOST", "OVS"]]
        for e in n["endpoints"]:
            rows.append([e["container"] or "-", e["endpoint_id"][:12], *_port_cells(e["port"], e["addresses"])])
        for p in n.get("cni_attachments", []):
            rows.append([f"cni:{p['netns'] or '?'}", p["device_id"][:12] or "-", *_port_cells(p, p["fixed_ips"])])
        for p in n["other_ports"]:
            rows.append(["(none)", p["device_id"][:12] or "-", *_port_cells(p, p["fixed_ips"])])
        if len(rows) > 1:
            print(common.table(rows, "  "))
        if n.get("pool_ports"):
            print(f"  warm pool: {n['pool_ports']} idle ports bound to this host")
    if doc["problems"]:
        print("\nproblems:")
        for problem in doc["problems"]:
            print(f"  - {problem}")


def _port_cells(port: dict[str, Any] | None, addresses: list[str]) -> list[str]:
    if port is None:
        return ["-", ",".join(addresses) or "-", "-", "-", "-", "-"]
    ovs = port["ovs"]
    iface = (f"{ovs['name']}@{ovs['bridge'] or '?'} ofport {ovs['ofport']}"
             + (" ovn-installed" if ovs["ovn_installed"] else "")) if ovs else "-"
    return [port["id"], ",".join(port["fixed_ips"]) or "-", port["status"] or "-", port["vif_type"] or "-",
            port["host"] or "-", iface]
