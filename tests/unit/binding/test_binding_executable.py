"""<bindir>/<vif_type> executables get kuryr-lib's exact argv; failures and hangs become clear errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from oslo_config import cfg

from courier.binding.errors import BindingError
from courier.binding.plugs.executable import ExecutablePlug, details_arg, executable_path
from tests.unit.binding.binding_fakes import NETWORK_ID, PORT_ID, make_conf, make_vif

RECORDING_SCRIPT = """#!/usr/bin/env python3
import json, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
"""


def install(bindir: Path, name: str, text: str) -> Path:
    bindir.mkdir(exist_ok=True)
    path = bindir / name
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[ExecutablePlug, Path, Path]:
    log = tmp_path / "argv.log"
    script = install(tmp_path / "bin", "midonet", RECORDING_SCRIPT.format(log=str(log)))
    return ExecutablePlug(make_conf(bindir=str(tmp_path / "bin"))), script, log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_bind_and_unbind_argv_match_kuryr_lib(recorded):
    plug, script, log = recorded
    vif = make_vif(vif_type="midonet", vif_details={"port_filter": True, "ovs_hybrid_plug": False})

    plug.plug(vif)
    plug.unplug(vif)

    details = "\"{'port_filter': True, 'ovs_hybrid_plug': False}\""
    assert calls(log) == [
        [str(script), "bind", PORT_ID, "tap3f1c2a9e-5b", "cbtest0123456789abcdef", "fa:16:3e:aa:bb:cc",
         NETWORK_ID, "proj-1", details],
        [str(script), "unbind", PORT_ID, "tap3f1c2a9e-5b", "cbtest0123456789abcdef", "fa:16:3e:aa:bb:cc",
         details, NETWORK_ID],
    ]


def test_empty_vif_details_are_passed_as_kuryr_does():
    assert details_arg({}) == "None"


def test_nested_details_print_like_the_dict_kuryr_got_from_neutron():
    from types import MappingProxyType

    details = MappingProxyType({"bound_drivers": MappingProxyType({"0": "ovn"}), "connectivity": "l2"})
    assert details_arg(details) == "\"{'bound_drivers': {'0': 'ovn'}, 'connectivity': 'l2'}\""


def test_kuryr_ovs_script_detects_hybrid_plug_in_our_details_string():
    # kuryr's ovs script: [ "${7/$HYBRID_PLUG}" = "$7" ] with HYBRID_PLUG="'ovs_hybrid_plug': True"
    assert "'ovs_hybrid_plug': True" in details_arg({"port_filter": True, "ovs_hybrid_plug": True})


def test_failure_reports_status_and_stderr(tmp_path):
    install(tmp_path / "bin", "iovisor", "#!/bin/sh\necho 'ifc_ctl: no such gateway' >&2\nexit 3\n")
    plug = ExecutablePlug(make_conf(bindir=str(tmp_path / "bin")))

    with pytest.raises(BindingError) as err:
        plug.plug(make_vif(vif_type="iovisor"))

    message = str(err.value)
    assert f"{tmp_path}/bin/iovisor bind" in message and PORT_ID in message
    assert "status 3" in message and "ifc_ctl: no such gateway" in message


def test_hanging_script_and_its_children_are_killed_at_the_timeout(tmp_path):
    marker = tmp_path / "child-survived"
    script = f"#!/bin/sh\necho starting >&2\n(sleep 1; touch {marker}) &\nsleep 30\n"
    install(tmp_path / "bin", "slow", script)
    conf = make_conf(bindir=str(tmp_path / "bin"))
    if "plug_script_timeout" not in conf.courier:
        conf.register_opt(cfg.FloatOpt("plug_script_timeout"), group="courier")
    conf.set_override("plug_script_timeout", 0.3, group="courier")
    plug = ExecutablePlug(conf)

    started = time.monotonic()
    with pytest.raises(BindingError, match=r"did not finish within 0.3 s and was killed; stderr: starting"):
        plug.plug(make_vif(vif_type="slow"))
    assert time.monotonic() - started < 1.0
    time.sleep(1.2)
    assert not marker.exists()


def test_unplug_without_executable_is_a_no_op(tmp_path, monkeypatch):
    ran: list[object] = []
    monkeypatch.setattr("courier.binding.plugs.executable.subprocess.Popen", lambda argv, **kw: ran.append(argv))

    ExecutablePlug(make_conf(bindir=str(tmp_path))).unplug(make_vif(vif_type="midonet"))

    assert ran == [] and list(tmp_path.iterdir()) == []


def test_plug_without_executable_fails_clearly(tmp_path):
    with pytest.raises(BindingError, match=f"No executable {tmp_path}/midonet"):
        ExecutablePlug(make_conf(bindir=str(tmp_path))).plug(make_vif(vif_type="midonet"))


@pytest.mark.parametrize("vif_type", ["../../bin/sh", "..", ".", "", "a/b"])
def test_vif_type_cannot_point_outside_bindir(tmp_path, vif_type):
    assert executable_path(str(tmp_path), vif_type) is None
