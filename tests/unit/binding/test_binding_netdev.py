"""Host-port isolation (sysctls) and the TX checksum fallback chain, without touching the kernel."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyroute2.ethtool
import pytest

from courier.binding import netdev
from courier.binding.errors import BindingError


@pytest.fixture
def proc_sys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for family in ("ipv4", "ipv6"):
        (tmp_path / family / "conf" / "tapX").mkdir(parents=True)
    monkeypatch.setattr(netdev, "PROC_SYS_NET", tmp_path)
    return tmp_path


def test_host_port_gets_no_ipv6_and_never_answers_arp(proc_sys):
    netdev.isolate_host_port("tapX")

    assert (proc_sys / "ipv6/conf/tapX/disable_ipv6").read_text() == "1"
    assert (proc_sys / "ipv4/conf/tapX/arp_ignore").read_text() == "8"


def test_host_without_ipv6_is_fine(proc_sys):
    (proc_sys / "ipv6/conf/tapX").rmdir()
    netdev.isolate_host_port("tapX")

    assert not (proc_sys / "ipv6/conf/tapX").exists()  # nothing made up where the kernel has nothing
    assert (proc_sys / "ipv4/conf/tapX/arp_ignore").read_text() == "8"


def test_missing_ipv4_conf_is_an_error(proc_sys):
    with pytest.raises(BindingError, match="arp_ignore on tapY"):
        netdev.isolate_host_port("tapY")


class BrokenEthtool:
    def __init__(self) -> None:
        raise OSError("no ethtool ioctl here")


def test_tx_checksum_falls_back_to_the_ethtool_command(monkeypatch):
    ran: list[list[str]] = []
    monkeypatch.setattr(pyroute2.ethtool, "Ethtool", BrokenEthtool)

    def fake_run(argv, **kwargs):
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(netdev.subprocess, "run", fake_run)
    netdev.disable_tx_checksum("t_cX")

    assert ran == [["ethtool", "-K", "t_cX", "tx", "off"]]


def test_tx_checksum_failure_says_why_it_matters(monkeypatch):
    monkeypatch.setattr(pyroute2.ethtool, "Ethtool", BrokenEthtool)

    def no_ethtool(argv, **kwargs):
        raise FileNotFoundError("ethtool")

    monkeypatch.setattr(netdev.subprocess, "run", no_ethtool)
    with pytest.raises(BindingError, match=r"TX checksum offload off on t_cX .*userspace OVS datapath"):
        netdev.disable_tx_checksum("t_cX")
