"""Options, read with oslo.config so that an existing kuryr.conf works unchanged.

kuryr-libnetwork/kuryr-lib options keep their section, name and default; options Courier adds live in
``[courier]`` so they never collide with a future upstream option.
"""

from __future__ import annotations

import socket

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

CONF = cfg.CONF

DEFAULT_CONFIG_FILES = ["/etc/kuryr/kuryr.conf"]

default_opts = [
    cfg.StrOpt("kuryr_uri", default=None,
               help="TCP URI to serve on, e.g. http://127.0.0.1:23750. Unset (the default): unix socket only."),
    cfg.StrOpt("bindir", default="/usr/libexec/kuryr",
               help="Directory of executables named after a vif_type, run to plug ports of that type."),
    cfg.StrOpt("capability_scope", default="local", choices=["local", "global"],
               help="Scope reported to Docker."),
    cfg.StrOpt("capability_connectivity_scope", default="",
               help="ConnectivityScope reported to Docker; empty means the same as capability_scope."),
    cfg.BoolOpt("process_external_connectivity", default=True,
                help="Accepted for kuryr.conf compatibility; port mappings are left to Neutron."),
    # oslo.log's names, as kuryr-libnetwork reads them (Kolla's kuryr.conf sets debug and log_dir).
    cfg.BoolOpt("debug", default=False, help="Log debug messages (like `courier serve --debug`)."),
    cfg.StrOpt("log_dir", default=None,
               help="Log to <log_dir>/<log_file or program name>.log instead of stdout (oslo.log's rule)."),
    cfg.StrOpt("log_file", default=None, help="Log file name (in log_dir when relative); unset: stdout."),
    cfg.BoolOpt("enable_ssl", default=False, help="Serve TLS on kuryr_uri."),
    cfg.StrOpt("ssl_cert_file", help="TLS certificate for kuryr_uri."),
    cfg.StrOpt("ssl_key_file", help="TLS key for kuryr_uri."),
    cfg.StrOpt("ssl_ca_file", help="CA that client certificates must chain to (mutual TLS)."),
    cfg.StrOpt("deployment_type", default="baremetal", choices=["baremetal", "nested"],
               help="nested: Courier runs in a Nova VM and containers get Neutron ports behind the VM's port "
                    "(trunk subports with [binding] driver = vlan, allowed address pairs with macvlan/ipvlan). "
                    "See docs/nested.md."),
]

neutron_opts = [
    cfg.StrOpt("default_subnetpool_v4", default="kuryr",
               help="Name of the subnetpool that networks created without --subnet take IPv4 prefixes from."),
    cfg.StrOpt("default_subnetpool_v6", default="kuryr6",
               help="Name of the subnetpool that networks created without --subnet take IPv6 prefixes from."),
    cfg.BoolOpt("enable_dhcp", default=True, help="enable_dhcp on subnets Courier creates."),
    cfg.IntOpt("vif_plugging_timeout", default=0,
               help="kuryr-libnetwork's wait for port ACTIVE; when > 0 it overrides [courier] port_ready_timeout."),
    cfg.StrOpt("endpoint_type", default="public", help="Catalog interface used to find Neutron."),
    cfg.StrOpt("region_name", help="Region of the Neutron endpoint."),
]

binding_opts = [
    cfg.StrOpt("driver", default="kuryr.lib.binding.drivers.veth",
               help="How the container interface is made: veth, or nested vlan/macvlan/ipvlan. kuryr-lib module "
                    "paths are accepted and mapped to Courier drivers."),
    cfg.StrOpt("link_iface", default="", help="VM interface that nested containers hang off."),
    cfg.StrOpt("veth_dst_prefix", default="eth", help="Prefix Docker gives container interfaces (DstPrefix)."),
    cfg.StrOpt("host_id", default=None, help="binding:host_id for ports; default: this host's name."),
]

courier_opts = [
    cfg.StrOpt("driver_name", default="kuryr",
               help="Docker driver name: the socket is <plugin_dir>/<driver_name>.sock."),
    cfg.StrOpt("plugin_dir", default="/run/docker/plugins", help="Where Docker discovers plugin sockets."),
    cfg.StrOpt("cloud", default=None,
               help="Use this clouds.yaml entry for Neutron instead of the [neutron] keystoneauth options."),
    # ovsdb_connection, ovsdb_timeout and integration_bridge belong to the OVS plug driver, plug_script_timeout to
    # the executable one: they declare them (CONFIG_OPTS) and register_opts() below adds them to [courier].
    cfg.FloatOpt("port_ready_timeout", default=20.0,
                 help="Seconds Join waits for the port to forward traffic (0: do not wait)."),
    cfg.FloatOpt("neutron_timeout", default=10.0, help="Seconds before a Neutron API call is given up."),
    cfg.StrOpt("docker_host", default=None,
               help="Docker daemon this host's containers run on (e.g. unix:///run/docker.sock): when set, "
                    "`courier serve` removes what a crash left behind at start, as `courier gc` does."),
    cfg.StrOpt("metrics_listen", default=None, help="host:port for Prometheus /metrics; unset: off."),
    cfg.IntOpt("max_request_bytes", default=1 << 20, help="Largest request body accepted from Docker."),
    # deployment_type = nested (docs/nested.md)
    cfg.StrOpt("nested_vm_port", default="",
               help="Neutron port id of this VM's interface [binding] link_iface. Empty: found by that "
                    "interface's MAC address (once, on first use)."),
    cfg.StrOpt("nested_netns", default="",
               help="Network namespace (name under /run/netns, or a path) where [binding] link_iface lives and "
                    "where container interfaces are created. Empty: the namespace Courier runs in."),
    cfg.IntOpt("nested_vlan_min", default=1, min=1, max=4094, help="Lowest VLAN id given to trunk subports."),
    cfg.IntOpt("nested_vlan_max", default=4094, min=1, max=4094, help="Highest VLAN id given to trunk subports."),
    cfg.StrOpt("nested_macvlan_mac", default="vrrp", choices=["vrrp", "port"],
               help="MAC of a MACVLAN container and of its allowed address pair. vrrp: a free RFC 5798 VRRP MAC "
                    "(00:00:5e:00:01:XX), which ML2/OVN accepts on a bound port; port: the container port's own "
                    "MAC, as kuryr does (ML2/OVS only: ML2/OVN refuses it)."),
]


cni_opts = [
    cfg.BoolOpt("enabled", default=True,
                help="Serve the CNI front end (the courier-cni executable's daemon) next to the Docker plugin."),
    cfg.StrOpt("socket_path", default="/run/courier/cni.sock",
               help="Unix socket courier-cni calls (root only); a network config may name another (daemonSocket)."),
]


# Named after kuryr-kubernetes' [vif_pool] options, which operators of Kuryr pools already know.
vif_pool_opts = [
    cfg.BoolOpt("enabled", default=True,
                help="Keep Neutron ports bound to this host and plugged into OVS ahead of `docker run`, per network, "
                     "so that starting and removing a container makes no Neutron call. Off: every container gets "
                     "its port created (and deleted) while Docker waits."),
    cfg.IntOpt("ports_pool_min", default=4, min=0,
               help="Ready ports kept per network on this host (refilled in the background as containers take them)."),
    cfg.IntOpt("ports_pool_max", default=32, min=0,
               help="Most idle ports kept per network on this host; extra ones given back are deleted (0: no limit)."),
    cfg.IntOpt("ports_pool_batch", default=8, min=1,
               help="Ports made by one (bulk) Neutron call when a pool is refilled."),
    cfg.FloatOpt("ports_pool_update_frequency", default=5.0, min=0.1,
                 help="Seconds between checks of every pool (a pool that runs low is refilled at once as well)."),
    cfg.FloatOpt("idle_timeout", default=900.0, min=0,
                 help="Seconds without a container start after which a network's idle ports are deleted (0: never). "
                      "The next start refills it."),
    cfg.FloatOpt("describe_delay", default=2.0, min=0,
                 help="Seconds after CreateEndpoint before a pooled port gets the endpoint's name, device_id and "
                      "tags in Neutron; a container gone by then costs no Neutron call at all."),
]


def register_core_opts(conf: cfg.ConfigOpts = CONF) -> None:
    """Every option except the plug drivers' own."""
    conf.register_opts(default_opts)
    conf.register_opts(neutron_opts, group="neutron")
    ks_loading.register_session_conf_options(conf, "neutron")
    ks_loading.register_auth_conf_options(conf, "neutron")
    conf.register_opts(binding_opts, group="binding")
    conf.register_opts(courier_opts, group="courier")
    conf.register_opts(vif_pool_opts, group="vif_pool")
    conf.register_opts(cni_opts, group="cni")


def register_opts(conf: cfg.ConfigOpts = CONF) -> None:
    """Every option Courier reads, the built-in plug drivers' CONFIG_OPTS included (a plug driver loaded from
    elsewhere registers its own when the Binder loads it). Registering again is harmless."""
    from courier.binding import registry  # the drivers own their options; this is only where they are gathered

    register_core_opts(conf)
    registry.register_builtin_plug_opts(conf)


def load(argv: list[str] | None = None, conf: cfg.ConfigOpts = CONF) -> cfg.ConfigOpts:
    """Parse the command line and config files (default /etc/kuryr/kuryr.conf when it exists)."""
    import os

    if "kuryr_uri" not in conf:
        register_opts(conf)
    default_files = [f for f in DEFAULT_CONFIG_FILES if os.path.exists(f)]
    conf(argv or [], project="kuryr", default_config_files=default_files)
    return conf


def log_path(conf: cfg.ConfigOpts, program: str) -> str | None:
    """Where ``courier serve`` logs: oslo.log's rule (log_file, in log_dir when relative; log_dir alone:
    <log_dir>/<program>.log, e.g. kuryr-server.log under Kolla); None: stdout."""
    import os

    if conf.log_file:
        return os.path.join(conf.log_dir or "", conf.log_file)
    if conf.log_dir:
        return os.path.join(conf.log_dir, os.path.basename(program) + ".log")
    return None


def binding_host_id(conf: cfg.ConfigOpts = CONF) -> str:
    """binding:host_id of the ports Courier binds: [binding] host_id, or this host's name."""
    return conf.binding.host_id or socket.gethostname()


def port_ready_timeout(conf: cfg.ConfigOpts = CONF) -> float:
    """Seconds Join waits for a port to forward: kuryr's [neutron] vif_plugging_timeout wins when > 0."""
    legacy = conf.neutron.vif_plugging_timeout
    return float(legacy) if legacy > 0 else float(conf.courier.port_ready_timeout)


def link_driver_name(conf: cfg.ConfigOpts = CONF) -> str:
    """[binding] driver; kuryr-lib module paths work: ``kuryr.lib.binding.drivers.veth`` means ``veth``."""
    return str(conf.binding.driver).rsplit(".", 1)[-1]


def nested_netns(conf: cfg.ConfigOpts = CONF) -> str | None:
    """[courier] nested_netns: where link_iface lives; None for Courier's own namespace."""
    return conf.courier.nested_netns or None
