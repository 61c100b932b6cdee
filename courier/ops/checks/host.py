"""doctor: the binding host id is one Neutron can bind ports to; the OVS bridge exists in the local OVSDB."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from courier.config import options
from courier.ops.checks.base import ERROR, OK, SKIPPED, WARNING, Context, Finding, deployment, local


def check_binding_host(ctx: Context) -> Iterator[Finding]:
    if ctx.conf is None:
        yield Finding("binding-host", SKIPPED, "configuration unusable")
        return
    if deployment(ctx.conf) == "nested":
        yield Finding("binding-host", OK, "nested deployment: ports are bound through this VM's port")
        return
    host_id = options.binding_host_id(ctx.conf)
    known: dict[str, str] = {}  # host -> where it was seen
    sources: list[str] = []
    if ctx.neutron is not None and "agent" in ctx.extensions:
        try:
            for agent in ctx.neutron.agents():
                if agent.host:
                    known.setdefault(agent.host, f"Neutron agent {agent.agent_type!r}"
                                     + ("" if agent.alive else " (not alive)"))
            sources.append("Neutron agents")
        except Exception as exc:
            yield Finding("binding-host", WARNING, f"cannot list Neutron agents: {exc}")
    local_ids: dict[str, str] = {}
    with contextlib.suppress(Exception):  # the OVS check reports it
        local_ids = local(ctx).switch_external_ids()
    remote = local_ids.get("ovn-remote", "")
    if remote:
        from courier.ops import ovn

        sb = ovn.first_remote(remote)
        if sb.startswith("ssl:"):
            sources.append(f"(OVN SB {sb} skipped: SSL)")
        else:
            try:
                for ch in ovn.chassis(sb):
                    known.setdefault(ch.name, f"OVN chassis {ch.name!r} in {sb}")
                    if ch.hostname:
                        known.setdefault(ch.hostname, f"OVN chassis {ch.name!r} (hostname) in {sb}")
                sources.append(f"OVN Southbound {sb}")
            except Exception as exc:
                yield Finding("binding-host", WARNING, f"cannot read the OVN Southbound DB at {sb}: {exc}")
    option = "[binding] host_id" if ctx.conf.binding.host_id else "the hostname (no [binding] host_id)"
    if host_id in known:
        yield Finding("binding-host", OK, f"binding host id {host_id!r} ({option}) is {known[host_id]}")
    elif sources:
        system_id = local_ids.get("system-id", "")
        hint = (f"this host's ovn-controller runs as system-id {system_id!r}: set [binding] host_id = "
                f"{system_id}" if system_id else "set [binding] host_id to this host's chassis/agent host name")
        yield Finding("binding-host", ERROR,
                      f"binding host id {host_id!r} ({option}) is not a host Neutron can bind ports to: no "
                      f"agent or chassis has it in {' and '.join(s for s in sources if s[0] != '(')} "
                      f"(known: {', '.join(sorted(known)) or 'none'}); every port would be binding_failed",
                      hint + f"; or leave host_id unset to use the hostname {socket.gethostname()!r}")
    else:
        yield Finding("binding-host", WARNING, f"cannot check binding host id {host_id!r}: no Neutron agent list "
                      "and no ovn-remote in the local OVSDB", "check that an agent or chassis runs on this host")


def check_ovs(ctx: Context) -> Iterator[Finding]:
    if ctx.conf is None:
        yield Finding("ovs", SKIPPED, "configuration unusable")
        return
    if deployment(ctx.conf) == "nested":
        yield Finding("ovs", OK, "nested deployment: no local OVS bridge is used")
        return
    host = local(ctx)
    bridge = ctx.conf.courier.integration_bridge
    try:
        bridges = host.bridges()
    except Exception as exc:
        yield Finding("ovs", ERROR, f"cannot read the local OVSDB at {host.ovsdb_remote}: {exc}",
                      "start ovsdb-server/ovs-vswitchd, or set [courier] ovsdb_connection")
        return
    if bridge in bridges:
        yield Finding("ovs", OK, f"OVS bridge {bridge} exists in {host.ovsdb_remote}")
    else:
        yield Finding("ovs", ERROR, f"OVS bridge {bridge} ([courier] integration_bridge) does not exist in "
                      f"{host.ovsdb_remote} (bridges: {', '.join(bridges) or 'none'})",
                      f"set [courier] integration_bridge to the bridge ovn-controller/the OVS agent uses "
                      f"(usually br-int), or create it: ovs-vsctl add-br {bridge}")
