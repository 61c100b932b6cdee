"""doctor: Neutron answers, has the extensions Courier needs, and has the default subnetpools."""

from __future__ import annotations

from collections.abc import Iterator

from oslo_config import cfg

from courier.config.options import link_driver_name
from courier.ops.checks.base import ERROR, OK, SKIPPED, WARNING, Context, Finding, deployment

REQUIRED_EXTENSIONS = {
    "subnet_allocation": "subnetpools: Docker pools are Neutron subnetpools",
    "binding": "port binding (binding:host_id, binding:vif_type): Courier binds each port to this host",
}


def _neutron_where(conf: cfg.ConfigOpts) -> str:
    if conf.courier.cloud:
        return f"clouds.yaml cloud {conf.courier.cloud!r}"
    endpoint = getattr(conf.neutron, "endpoint", None) or getattr(conf.neutron, "auth_url", None)
    return str(endpoint or "the [neutron] endpoint")


def check_neutron(ctx: Context) -> Iterator[Finding]:
    if ctx.conf is None or ctx.auth_problem:
        yield Finding("neutron", SKIPPED, "Neutron credentials incomplete" if ctx.conf else "configuration unusable")
        return
    from courier.neutron.api import Neutron
    from courier.neutron.connection import connect

    where = _neutron_where(ctx.conf)
    try:
        neutron = Neutron(connect(ctx.conf))
        extensions = neutron.extensions()
    except Exception as exc:  # Courier's NeutronUnavailable, keystoneauth's errors, a bad endpoint URL...
        yield Finding("neutron", ERROR, f"Neutron at {where} is unreachable: {exc}",
                      "check [neutron] endpoint/auth_url and the credentials, and that neutron-server answers "
                      f"from this host (e.g. curl {where}/v2.0/extensions)")
        return
    ctx.neutron, ctx.extensions = neutron, extensions
    yield Finding("neutron", OK, f"Neutron at {where} answers ({len(extensions)} extensions)")
    missing = {alias: why for alias, why in REQUIRED_EXTENSIONS.items() if alias not in extensions}
    if "standard-attr-tag" not in extensions and "tag" not in extensions:
        missing["standard-attr-tag"] = "tags: Courier finds networks and ports by kuryr's tags"
    if deployment(ctx.conf) == "nested" and _link_driver(ctx.conf) == "vlan" and "trunk" not in extensions:
        missing["trunk"] = "trunks: nested containers are VLAN subports of this VM's trunk port"
    for alias, why in sorted(missing.items()):
        yield Finding("neutron-extensions", ERROR, f"Neutron lacks the {alias!r} extension ({why})",
                      f"enable it in neutron-server (service_plugins / ML2 extension_drivers providing {alias})")
    if not missing:
        wanted = ["standard-attr-tag" if "standard-attr-tag" in extensions else "tag", *REQUIRED_EXTENSIONS]
        if "trunk" in extensions:
            wanted.append("trunk")
        yield Finding("neutron-extensions", OK, f"extensions present: {', '.join(wanted)}")


def _link_driver(conf: cfg.ConfigOpts) -> str:
    return link_driver_name(conf)


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
