"""``courier doctor``: is this host set up for Courier? Each problem comes with the fix.

Checks, in order: kuryr.conf parses and every value is valid; Neutron answers and has the extensions Courier
needs; the binding host id is a chassis/agent host Neutron can bind ports to; the OVS bridge exists in the local
OVSDB; the plugin socket directory and Docker's discovery paths; the default subnetpools exist.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

from oslo_config import cfg

from courier.binding import settings
from courier.config import options
from courier.ops import common
from courier.ops.docker import DockerClient, DockerError

OK, WARNING, ERROR, SKIPPED = "ok", "warning", "error", "skipped"
DISCOVERY_DIRS = ("/run/docker/plugins", "/etc/docker/plugins", "/usr/lib/docker/plugins")
SOCKET_DISCOVERY_DIRS = ("/run/docker/plugins", "/var/run/docker/plugins")
REQUIRED_EXTENSIONS = {
    "subnet_allocation": "subnetpools: Docker pools are Neutron subnetpools",
    "binding": "port binding (binding:host_id, binding:vif_type): Courier binds each port to this host",
}


@dataclasses.dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    message: str
    fix: str = ""


class Context:
    """What the checks learn as they go, so that a later check can skip what an earlier one found broken."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.conf: cfg.ConfigOpts | None = None
        self.neutron: Any = None
        self.extensions: set[str] = set()
        self.local: Any = None


Check = Callable[[Context], Iterator[Finding]]


# --- config ---------------------------------------------------------------------------------------------------


def check_config(ctx: Context) -> Iterator[Finding]:
    files = [f for f in (ctx.args.config_file or []) if f] or [f for f in options.DEFAULT_CONFIG_FILES
                                                              if os.path.exists(f)]
    try:
        conf = common.load_config(ctx.args)
    except cfg.Error as exc:
        yield Finding("config", ERROR, f"cannot read the configuration: {exc}",
                      "fix the file named above (oslo.config INI syntax: [section] then 'option = value')")
        return
    if not files:
        yield Finding("config", ERROR, f"no configuration file: none given and {options.DEFAULT_CONFIG_FILES[0]} "
                      "does not exist", f"create {options.DEFAULT_CONFIG_FILES[0]} (kuryr-libnetwork's kuryr.conf "
                      "works as is) or pass --config-file")
        return
    bad = list(_invalid_values(conf))
    for group, name, problem in bad:
        yield Finding("config", ERROR, f"[{group}] {name}: {problem}",
                      f"correct [{group}] {name} in {', '.join(files)}, or remove it to use the default")
    auth = _auth_problem(conf)
    if auth:
        yield Finding("config", ERROR, auth, "in [neutron]: auth_type = password with auth_url, username, password, "
                      "project_name (...), or auth_type = none with endpoint = http://NEUTRON:9696; or set "
                      "[courier] cloud = NAME of a clouds.yaml entry")
    if not bad and not auth:
        yield Finding("config", OK, f"{', '.join(files)}: every value is valid")
    ctx.conf = conf


def _invalid_values(conf: cfg.ConfigOpts) -> Iterator[tuple[str, str, str]]:
    """oslo.config checks a value only when it is read: read them all."""
    groups: list[tuple[str, Any]] = [("DEFAULT", conf)]
    groups += [(name, getattr(conf, name)) for name in sorted(conf.list_all_sections() or [])
               if name != "DEFAULT" and _is_group(conf, name)]
    for label, section in groups:
        names = [n for n in section if not _is_group(conf, n)] if section is conf else list(section)
        for name in sorted(names):
            try:
                getattr(section, name)
            except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
                continue
            except (cfg.Error, ValueError) as exc:
                yield label, name, _short(exc)


def _is_group(conf: cfg.ConfigOpts, name: str) -> bool:
    try:
        return isinstance(getattr(conf, name), cfg.ConfigOpts.GroupAttr)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return False
    except Exception:
        return False


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("Value for option") and ": " in text else text


def _auth_problem(conf: cfg.ConfigOpts) -> str:
    if conf.courier.cloud:
        return ""
    from keystoneauth1 import exceptions as ks_exc
    from keystoneauth1 import loading as ks_loading

    try:
        auth = ks_loading.load_auth_from_conf_options(conf, "neutron")
    except ks_exc.ClientException as exc:
        return f"[neutron] authentication options are incomplete: {exc}"
    except cfg.Error as exc:
        return f"[neutron] authentication options: {_short(exc)}"
    if auth is None:
        return "[neutron] auth_type is not set: Courier cannot reach Neutron"
    if type(auth).__name__ == "NoAuth" and not getattr(conf.neutron, "endpoint", None):
        return "[neutron] auth_type = none needs endpoint = http://NEUTRON:9696"
    return ""


# --- Neutron ----------------------------------------------------------------------------------------------------


def _neutron_where(conf: cfg.ConfigOpts) -> str:
    if conf.courier.cloud:
        return f"clouds.yaml cloud {conf.courier.cloud!r}"
    endpoint = getattr(conf.neutron, "endpoint", None) or getattr(conf.neutron, "auth_url", None)
    return str(endpoint or "the [neutron] endpoint")


def check_neutron(ctx: Context) -> Iterator[Finding]:
    if ctx.conf is None:
        yield Finding("neutron", SKIPPED, "configuration unusable")
        return
    from courier.exceptions import CourierError
    from courier.neutron.api import Neutron
    from courier.neutron.connection import connect

    where = _neutron_where(ctx.conf)
    try:
        neutron = Neutron(connect(ctx.conf))
        extensions = neutron.extensions()
    except (CourierError, Exception) as exc:
        yield Finding("neutron", ERROR, f"Neutron at {where} is unreachable: {exc}",
                      "check [neutron] endpoint/auth_url and the credentials, and that neutron-server answers "
                      f"from this host (e.g. curl {where}/v2.0/extensions)")
        return
    ctx.neutron, ctx.extensions = neutron, extensions
    yield Finding("neutron", OK, f"Neutron at {where} answers ({len(extensions)} extensions)")
    missing = {alias: why for alias, why in REQUIRED_EXTENSIONS.items() if alias not in extensions}
    if "standard-attr-tag" not in extensions and "tag" not in extensions:
        missing["standard-attr-tag"] = "tags: Courier finds networks and ports by kuryr's tags"
    if _deployment(ctx.conf) == "nested" and _link_driver(ctx.conf) == "vlan" and "trunk" not in extensions:
        missing["trunk"] = "trunks: nested containers are VLAN subports of this VM's trunk port"
    for alias, why in sorted(missing.items()):
        yield Finding("neutron-extensions", ERROR, f"Neutron lacks the {alias!r} extension ({why})",
                      f"enable it in neutron-server (service_plugins / ML2 extension_drivers providing {alias})")
    if not missing:
        wanted = ["standard-attr-tag" if "standard-attr-tag" in extensions else "tag", *REQUIRED_EXTENSIONS]
        if "trunk" in extensions:
            wanted.append("trunk")
        yield Finding("neutron-extensions", OK, f"extensions present: {', '.join(wanted)}")


def _deployment(conf: cfg.ConfigOpts) -> str:
    return str(settings.value(conf, "", "deployment_type", "baremetal"))


def _link_driver(conf: cfg.ConfigOpts) -> str:
    return settings.link_driver_name(conf)


# --- binding host ---------------------------------------------------------------------------------------------


def check_binding_host(ctx: Context) -> Iterator[Finding]:
    if ctx.conf is None:
        yield Finding("binding-host", SKIPPED, "configuration unusable")
        return
    if _deployment(ctx.conf) == "nested":
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
        local_ids = _local(ctx).switch_external_ids()
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
    option = "[binding] host_id" if settings.value(ctx.conf, "binding", "host_id", "") else \
        "the hostname (no [binding] host_id)"
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


# --- OVS --------------------------------------------------------------------------------------------------------


def _local(ctx: Context) -> Any:
    if ctx.local is None:
        from courier.ops.host import LocalHost

        assert ctx.conf is not None
        ctx.local = LocalHost(ctx.conf)
    return ctx.local


def check_ovs(ctx: Context) -> Iterator[Finding]:
    if ctx.conf is None:
        yield Finding("ovs", SKIPPED, "configuration unusable")
        return
    if _deployment(ctx.conf) == "nested":
        yield Finding("ovs", OK, "nested deployment: no local OVS bridge is used")
        return
    local = _local(ctx)
    bridge = settings.integration_bridge(ctx.conf)
    try:
        bridges = local.bridges()
    except Exception as exc:
        yield Finding("ovs", ERROR, f"cannot read the local OVSDB at {local.ovsdb_remote}: {exc}",
                      "start ovsdb-server/ovs-vswitchd, or set [courier] ovsdb_connection")
        return
    if bridge in bridges:
        yield Finding("ovs", OK, f"OVS bridge {bridge} exists in {local.ovsdb_remote}")
    else:
        yield Finding("ovs", ERROR, f"OVS bridge {bridge} ([courier] integration_bridge) does not exist in "
                      f"{local.ovsdb_remote} (bridges: {', '.join(bridges) or 'none'})",
                      f"set [courier] integration_bridge to the bridge ovn-controller/the OVS agent uses "
                      f"(usually br-int), or create it: ovs-vsctl add-br {bridge}")


# --- Docker plugin discovery -------------------------------------------------------------------------------------


def check_plugin_paths(ctx: Context) -> Iterator[Finding]:
    if ctx.conf is None:
        yield Finding("plugin", SKIPPED, "configuration unusable")
        return
    name, plugin_dir = ctx.conf.courier.driver_name, ctx.conf.courier.plugin_dir
    sock = os.path.join(plugin_dir, name + ".sock")
    present = [d for d in DISCOVERY_DIRS if os.path.isdir(d)]
    yield Finding("discovery", OK, "Docker plugin discovery paths present: " + (", ".join(present) or "none")
                  + (f"; absent: {', '.join(d for d in DISCOVERY_DIRS if d not in present)}"
                     if len(present) < len(DISCOVERY_DIRS) else ""))
    specs = [os.path.join(d, name + ext) for d in DISCOVERY_DIRS[1:] for ext in (".spec", ".json")]
    specs = [s for s in specs if os.path.exists(s)]
    if ctx.conf.kuryr_uri:
        if specs:
            yield Finding("plugin", OK, f"Docker finds driver {name!r} through {specs[0]}")
        else:
            yield Finding("plugin", ERROR, f"[DEFAULT] kuryr_uri = {ctx.conf.kuryr_uri} but Docker has no "
                          f"{name}.spec or {name}.json in /etc/docker/plugins or /usr/lib/docker/plugins",
                          f"install deploy/docker-plugins/kuryr.spec as /etc/docker/plugins/{name}.spec "
                          f"(its one line: {ctx.conf.kuryr_uri})")
    if os.path.realpath(plugin_dir) not in {os.path.realpath(d) for d in SOCKET_DISCOVERY_DIRS}:
        yield Finding("plugin", WARNING, f"[courier] plugin_dir = {plugin_dir}: Docker looks for plugin sockets "
                      "only in /run/docker/plugins", "leave plugin_dir at its default unless a spec file "
                      f"points Docker at {sock}")
    if not os.path.isdir(plugin_dir):
        yield Finding("plugin", WARNING, f"socket directory {plugin_dir} does not exist yet",
                      f"courier serve creates it; or mkdir -p {plugin_dir}")
        return
    if os.path.exists(sock):
        answer = _activate(sock)
        if answer:
            yield Finding("plugin", OK, f"Courier answers on {sock}")
        else:
            yield Finding("plugin", WARNING, f"{sock} exists but nothing answers on it (left by a stopped "
                          "process?)", "start courier serve (it replaces a stale socket)")
    else:
        yield Finding("plugin", OK, f"socket directory {plugin_dir} exists; no Courier listens on {sock} yet")
    for spec in specs:
        if not ctx.conf.kuryr_uri and os.path.exists(sock):
            yield Finding("plugin", WARNING, f"{spec} also declares driver {name!r}; Docker uses the socket "
                          f"{sock} first", f"remove {spec} if it is left over from a TCP setup")


def _activate(sock: str) -> bool:
    from courier.ops.docker import _UnixConnection

    conn = _UnixConnection(sock, 3.0)
    try:
        conn.request("POST", "/Plugin.Activate", body=b"{}")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def check_docker(ctx: Context) -> Iterator[Finding]:
    client = DockerClient(ctx.args.docker_host)
    try:
        version = client.version()
    except DockerError as exc:
        yield Finding("docker", WARNING, str(exc), "pass --docker-host or set DOCKER_HOST to check the daemon too")
        return
    yield Finding("docker", OK, f"Docker {version.get('Version', '?')} (API {version.get('ApiVersion', '?')}) "
                  f"answers at {client.host}")


# --- default subnetpools --------------------------------------------------------------------------------------


def check_subnetpools(ctx: Context) -> Iterator[Finding]:
    if ctx.conf is None or ctx.neutron is None:
        yield Finding("subnetpools", SKIPPED, "Neutron not reachable" if ctx.conf else "configuration unusable")
        return
    for version, option in ((4, "default_subnetpool_v4"), (6, "default_subnetpool_v6")):
        name = getattr(ctx.conf.neutron, option)
        try:
            found = ctx.neutron.list_subnetpools(name=name)
        except Exception as exc:
            yield Finding("subnetpools", ERROR, f"cannot list subnetpools: {exc}")
            return
        fix = (f"create it: openstack subnet pool create --pool-prefix 10.210.0.0/16 --default-prefix-length 24 "
               f"{name}" if version == 4 else
               f"create it: openstack subnet pool create --pool-prefix fd42::/48 --default-prefix-length 64 {name}")
        fix += f"; or set [neutron] {option} to an existing pool"
        if len(found) == 1:
            pool = found[0]
            yield Finding("subnetpools", OK, f"[neutron] {option} = {name}: subnetpool {pool.id} "
                          f"({', '.join(map(str, pool.prefixes))}, /{pool.default_prefixlen})")
        elif not found:
            # Only networks created without --subnet need it: fatal for IPv4, a warning for IPv6.
            yield Finding("subnetpools", ERROR if version == 4 else WARNING,
                          f"[neutron] {option} = {name}: Neutron has no subnetpool named {name!r}; "
                          f"`docker network create`{' --ipv6' if version == 6 else ''} without --subnet will fail",
                          fix)
        else:
            yield Finding("subnetpools", ERROR, f"[neutron] {option} = {name}: {len(found)} subnetpools have "
                          "that name; Courier needs exactly one", "rename or delete the duplicates")


CHECKS: list[Check] = [check_config, check_neutron, check_binding_host, check_ovs, check_plugin_paths,
                       check_subnetpools, check_docker]


def diagnose(args: argparse.Namespace) -> list[Finding]:
    ctx = Context(args)
    findings: list[Finding] = []
    try:
        for check in CHECKS:
            try:
                findings.extend(check(ctx))
            except Exception as exc:  # a check that breaks is itself a finding, never a traceback
                findings.append(Finding(check.__name__.removeprefix("check_"), ERROR, f"check failed: {exc}"))
    finally:
        if ctx.local is not None:
            ctx.local.close()
    return findings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check configuration, Neutron, OVS and Docker plugin setup",
                       description="Check this host's Courier setup; every problem comes with a fix. "
                                   "Exit status: 0 no errors (warnings allowed), 1 errors found.")
    common.add_common(p, docker=True)
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    common.setup_logging(args)
    findings = diagnose(args)
    failing = {ERROR, WARNING} if args.strict else {ERROR}
    ok = not any(f.severity in failing for f in findings)
    if args.json:
        common.print_json({"ok": ok, "findings": [dataclasses.asdict(f) for f in findings]})
    else:
        for f in findings:
            label = f.severity.upper() if f.severity in (ERROR, WARNING) else f.severity
            print(f"{label:<8} {f.check:<19} {f.message}")
            if f.fix and f.severity in (ERROR, WARNING):
                print(f"{'':<8} {'':<19} fix: {f.fix}")
        errors = sum(f.severity == ERROR for f in findings)
        warnings = sum(f.severity == WARNING for f in findings)
        print(f"\n{errors} error(s), {warnings} warning(s)", file=sys.stderr if ok else sys.stdout)
    return common.OK if ok else common.FINDINGS
