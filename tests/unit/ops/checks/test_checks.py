"""courier doctor's checks on their own: configuration validity, the OVS bridge, nested short cuts."""

from __future__ import annotations

import argparse
from pathlib import Path

from courier.ops.checks import CHECKS, config, host
from courier.ops.checks.base import ERROR, OK, SKIPPED, Context
from tests.unit.dockerd import make_conf

GOOD = "[neutron]\nauth_type = none\nendpoint = http://127.0.0.1:9696\n"


def context(*files: Path) -> Context:
    return Context(argparse.Namespace(config_file=[str(f) for f in files], docker_host=None))


def run_config(tmp_path: Path, text: str) -> tuple[Context, list[tuple[str, str]]]:
    path = tmp_path / "kuryr.conf"
    path.write_text(text)
    ctx = context(path)
    return ctx, [(f.severity, f.message) for f in config.check_config(ctx)]


def test_a_valid_kuryr_conf_passes_and_is_kept_for_the_later_checks(tmp_path: Path):
    ctx, findings = run_config(tmp_path, GOOD)

    assert findings == [(OK, f"{tmp_path / 'kuryr.conf'}: every value is valid")]
    assert ctx.conf is not None and ctx.conf.neutron.endpoint == "http://127.0.0.1:9696"


def test_an_invalid_value_of_a_plug_driver_option_is_named(tmp_path: Path):
    _, findings = run_config(tmp_path, GOOD + "[courier]\novsdb_timeout = soon\n")

    assert [s for s, _ in findings] == [ERROR]
    assert findings[0][1].startswith("[courier] ovsdb_timeout:")


def test_missing_credentials_are_reported(tmp_path: Path):
    ctx, findings = run_config(tmp_path, "[DEFAULT]\n")

    assert (ERROR, "[neutron] auth_type is not set: Courier cannot reach Neutron") in findings
    assert ctx.auth_problem


class FakeLocal:
    ovsdb_remote = "unix:/fake/db.sock"

    def __init__(self, bridges: list[str]):
        self._bridges = bridges

    def bridges(self) -> list[str]:
        return self._bridges


def ovs_findings(conf_overrides: dict[str, object], bridges: list[str]) -> list[tuple[str, str]]:
    ctx = context()
    ctx.conf = make_conf(**conf_overrides)
    ctx.local = FakeLocal(bridges)
    return [(f.severity, f.message) for f in host.check_ovs(ctx)]


def test_the_integration_bridge_must_exist():
    assert ovs_findings({}, ["br-int"]) == [(OK, "OVS bridge br-int exists in unix:/fake/db.sock")]
    [(severity, message)] = ovs_findings({"courier__integration_bridge": "br-x"}, ["br-int"])
    assert severity == ERROR and "OVS bridge br-x ([courier] integration_bridge) does not exist" in message


def test_nested_deployments_skip_the_host_checks_without_touching_ovsdb():
    ctx = context()
    ctx.conf = make_conf(deployment_type="nested")
    ctx.local = None  # a look at OVSDB would open LocalHost: it must not happen

    assert [f.severity for f in host.check_ovs(ctx)] == [OK]
    assert [f.severity for f in host.check_binding_host(ctx)] == [OK]
    assert ctx.local is None


def test_every_check_skips_cleanly_without_a_configuration():
    ctx = context()
    for check in (c for c in CHECKS if c is not config.check_config and c.__name__ != "check_docker"):
        assert {f.severity for f in check(ctx)} == {SKIPPED}, check.__name__
