"""``courier doctor`` on the real stack: a good setup passes; each broken one fails, naming its problem."""

from __future__ import annotations

import re
import socket
import uuid

import pytest

from tests.integration.ops.conftest import CLI, base_config

pytestmark = pytest.mark.integration


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BROKEN = {
    # name: (extra kuryr.conf (oslo.config merges a repeated section), endpoint, failing check, message)
    "neutron stopped": ("", "http://127.0.0.1:{dead}", "neutron", r"Neutron at http://127\.0\.0\.1:\d+ is unreachable"),
    "unknown binding host": ("[binding]\nhost_id = nosuchhost\n", None, "binding-host",
                             r"binding host id 'nosuchhost' .*is not a host Neutron can bind ports to"),
    "missing OVS bridge": ("[courier]\nintegration_bridge = br-missing\n", None, "ovs",
                           r"OVS bridge br-missing \(\[courier\] integration_bridge\) does not exist"),
    "bad config value": ("[courier]\nport_ready_timeout = abc\n", None, "config",
                         r"\[courier\] port_ready_timeout: .*abc"),
    "missing default subnetpool": ("[neutron]\ndefault_subnetpool_v4 = nosuchpool-doctor\n", None, "subnetpools",
                                   r"default_subnetpool_v4 = nosuchpool-doctor: Neutron has no subnetpool named"),
}


def _run(cli: CLI, extra: str = "", endpoint: str | None = None) -> tuple[int, dict]:
    name = "doctor-" + uuid.uuid4().hex[:6]
    conf = cli.config(base_config(name, extra, **({"endpoint": endpoint} if endpoint else {})))
    return cli.json("doctor", "--config-file", str(conf))


def test_good_setup_passes(cli: CLI) -> None:
    rc, doc = _run(cli)
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert rc == 0 and doc["ok"] and not errors, errors
    checks = {f["check"] for f in doc["findings"] if f["severity"] == "ok"}
    assert {"config", "neutron", "neutron-extensions", "binding-host", "ovs", "subnetpools", "docker"} <= checks


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_setup_fails_naming_the_problem(cli: CLI, case: str) -> None:
    extra, endpoint, check, message = BROKEN[case]
    rc, doc = _run(cli, extra, endpoint.format(dead=_dead_port()) if endpoint else None)
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert rc == 1 and not doc["ok"]
    assert [f["check"] for f in errors] == [check], errors  # that problem, and only that one
    assert re.search(message, errors[0]["message"]), errors[0]["message"]
    assert errors[0]["fix"], "every error comes with a fix"


def test_text_output_and_exit_codes(cli: CLI) -> None:
    conf = cli.config(base_config("doctor-text", "[courier]\nintegration_bridge = br-missing\n"))
    result = cli("doctor", "--config-file", str(conf))
    assert result.returncode == 1
    assert re.search(r"^ERROR\s+ovs\s+OVS bridge br-missing", result.stdout, re.M), result.stdout
    assert "fix: " in result.stdout
    assert cli("doctor", "--no-such-flag").returncode == 2
    assert cli("doctor", "--help").returncode == 0
