"""An existing kuryr-libnetwork kuryr.conf is read unchanged."""

from pathlib import Path

from oslo_config import cfg

from courier.config import options

KURYR_CONF = """
[DEFAULT]
bindir = /usr/local/libexec/kuryr
capability_scope = global
process_external_connectivity = False

[neutron]
auth_type = password
auth_url = http://keystone:5000/v3
username = kuryr
password = secret
project_name = service
user_domain_name = Default
project_domain_name = Default
default_subnetpool_v4 = pool4
vif_plugging_timeout = 30

[binding]
driver = kuryr.lib.binding.drivers.veth
veth_dst_prefix = eth
"""


def test_kuryr_conf_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "kuryr.conf"
    path.write_text(KURYR_CONF)
    conf = cfg.ConfigOpts()
    options.load(["--config-file", str(path)], conf=conf)
    assert conf.bindir == "/usr/local/libexec/kuryr"
    assert conf.capability_scope == "global"
    assert conf.neutron.default_subnetpool_v4 == "pool4"
    assert conf.neutron.default_subnetpool_v6 == "kuryr6"
    assert conf.neutron.auth_type == "password"
    assert conf.binding.veth_dst_prefix == "eth"
    assert conf.courier.driver_name == "kuryr"
    assert conf.kuryr_uri is None  # no TCP listener unless asked for


def test_log_file_follows_oslo_log_as_kolla_sets_log_dir():
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([])
    assert options.log_path(conf, "kuryr-server") is None  # stdout
    conf.set_override("log_dir", "/var/log/kolla/kuryr")
    assert options.log_path(conf, "/opt/courier/bin/kuryr-server") == "/var/log/kolla/kuryr/kuryr-server.log"
    conf.set_override("log_file", "courier.log")
    assert options.log_path(conf, "kuryr-server") == "/var/log/kolla/kuryr/courier.log"
