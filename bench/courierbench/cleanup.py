"""What each plugin left behind (leak check) and removal of everything the run started or created."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tests.testkit import host_links

from .common import (
    DOCKER_PID,
    DOCKER_SOCK,
    EXEC_ROOT,
    RUN_DIR,
    SPEC_DIR,
    SPEC_FILE,
    WORK_BASE,
    log,
    neutron,
    neutron_up,
    stop_process,
)
from .dockerd import docker
from .plugins import Plugin

if TYPE_CHECKING:
    from .bench import Bench


def veth_names(p: Plugin) -> set[str]:
    ids = {i for c, i in p.proxy.created if c == "ports"} | p.proxy.device_ids
    # kuryr-libnetwork: tap/t_c + port id, 14 chars; Courier: tap/t_c + endpoint id, 14 chars
    return {(pre + i)[:n] for i in ids for pre in ("tap", "t_c") for n in (14, 15)}


def ovs_ifaces(port_ids: set[str]) -> list[str]:
    p = subprocess.run(["ovs-vsctl", "--timeout=10", "--format=json", "--columns=name,external_ids",
                        "list", "Interface"], capture_output=True, text=True)
    if p.returncode:
        return []
    out = []
    for name, ext in json.loads(p.stdout)["data"]:
        ids = dict(ext[1]) if isinstance(ext, list) and ext[0] == "map" else {}
        if ids.get("iface-id") in port_ids:
            out.append(name)
    return out


def leak_check(b: Bench, p: Plugin) -> list[str]:
    """What this plugin created and did not remove (after all its Docker networks are gone)."""
    leaks: list[str] = []
    if any(p.res.get(f"{ph}_rc", 0) != 0 for ph in ("net-rm", "conc-net-rm", "replay-net-rm")) or any(
            p.res.get(f"{ph}_rc", 0) == 124 for ph in ("net-create", "conc-net-create")):
        return ["(not checked: a network create/rm was cut short or failed; the cleanup removes what is left)"]
    try:
        for coll, rid in neutron_leftovers(p):
            st, body = neutron("GET", f"/v2.0/{coll}/{rid}")
            if st == 200:
                res: dict = next(iter(body.values()), {})
                leaks.append(f"Neutron {coll[:-1]} {rid} ({res.get('name') or res.get('cidr') or ''})")
    except OSError as exc:
        leaks.append(f"(could not check Neutron: {exc})")
    ports = {i for c, i in p.proxy.created if c == "ports"}
    leaks += [f"OVS port {n}" for n in ovs_ifaces(ports)]
    links = host_links(check=False) - b.links_before
    leaks += [f"host netdev {n}" for n in sorted(links & veth_names(p))]
    return leaks


def neutron_leftovers(p: Plugin) -> list[tuple[str, str]]:
    """Resources of this plugin that still exist, in deletion order.

    Mostly the ids the proxy saw created; plus what a lost reply hid from it (Neutron restarted mid-call):
    ports on its networks, networks tagged with its Docker network ids, kuryrPool-<cidr> pools of its CIDRs.
    """
    found = list(p.proxy.created)
    nets = {i for c, i in found if c == "networks"}
    for did in p.networks:
        st, body = neutron("GET", f"/v2.0/networks?tags=kuryr.net.uuid.lh:{did[:32]}&fields=id")
        nets |= {n["id"] for n in body.get("networks", [])} if st == 200 else set()
    for nid in nets:
        st, body = neutron("GET", f"/v2.0/ports?network_id={nid}&fields=id&fields=device_owner")
        found += [("ports", q["id"]) for q in body.get("ports", []) if st == 200
                  and not str(q.get("device_owner", "")).startswith("network:")]
        found.append(("networks", nid))
    for cidr in p.cidrs.values():
        st, body = neutron("GET", f"/v2.0/subnetpools?name=kuryrPool-{cidr}&fields=id&fields=prefixes")
        found += [("subnetpools", sp["id"]) for sp in body.get("subnetpools", []) if st == 200
                  and sp.get("prefixes") == [str(cidr)]]
    order = ["trunks", "ports", "security-group-rules", "subnets", "networks", "subnetpools", "security-groups"]
    uniq: list[tuple[str, str]] = []
    for coll in order:
        for c, rid in reversed(found):
            if c == coll and (c, rid) not in uniq:
                uniq.append((c, rid))
    return uniq


def cleanup(b: Bench) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if not b.locked:
        return
    log("cleaning up")
    b.watch.stop()
    notes = b.cleanup_notes
    # 0. networks the replay made directly on the plugins (dockerd never saw them)
    from .replay import cleanup_replay
    for p in b.plugins.values():
        notes += cleanup_replay(b, p)
    # 1. containers and networks, through the plugins while they still run
    if b.dockerd and b.dockerd.poll() is None:
        rc, out, _, _ = docker("ps", "-aq", timeout=20)
        if rc == 0 and out:
            docker("rm", "-f", *out.split(), timeout=20)
            notes.append(f"removed {len(out.split())} leftover container(s)")
        rc, out, _, _ = docker("network", "ls", "-q", "--filter", "name=bench-", timeout=20)
        for nid in out.split() if rc == 0 else []:
            r = docker("network", "rm", nid, timeout=10)
            notes.append(f"removed leftover Docker network {nid}" + (f" (failed: {r[2]})" if r[0] else ""))
    # 2. our dockerd, then what it left in the exec-root
    stop_process(b.dockerd, "bench dockerd", 10)
    er = Path(EXEC_ROOT)
    if b.dockerd is not None:
        for ns in set(os.listdir(er / "netns")) - b.netns_before if (er / "netns").exists() else []:
            subprocess.run(["umount", "-l", str(er / "netns" / ns)], capture_output=True)
            with contextlib.suppress(OSError):
                (er / "netns" / ns).unlink()
        for entry in (set(os.listdir(er)) if er.exists() else set()) - b.exec_root_before - {"plugins"}:
            path = er / entry
            subprocess.run(["umount", "-R", "-l", str(path)], capture_output=True)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
    # 3. plugins
    for p in b.plugins.values():
        stop_process(p.proc, p.title, 5)
    if b.wrote_spec:
        with contextlib.suppress(FileNotFoundError):
            SPEC_FILE.unlink()
    if b.created_spec_dir:
        # left in place (empty): it is Docker's standard discovery dir, and other tests on this machine
        # write spec files into it without creating it
        notes.append(f"created {SPEC_DIR} (left in place, empty of our files)")
    for p in b.plugins.values():
        if p.is_courier and p.proc is not None:
            with contextlib.suppress(FileNotFoundError):
                p.socket.unlink()
    # 4. Neutron resources they made (ids recorded by the proxies), OVS ports and veths
    for p in b.plugins.values():
        port_ids = {i for c, i in p.proxy.created if c == "ports"}
        for name in ovs_ifaces(port_ids):
            subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-port", name], capture_output=True)
            notes.append(f"{p.key}: deleted leftover OVS port {name}")
        for name in sorted((host_links(check=False) - b.links_before) & veth_names(p)):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
            notes.append(f"{p.key}: deleted leftover netdev {name}")
        try:
            if not neutron_up() and not b.wait_neutron(15, budget=False):
                raise OSError("Neutron not answering")
            for coll, rid in neutron_leftovers(p):
                st, _ = neutron("GET", f"/v2.0/{coll}/{rid}")
                if st == 200:
                    st2, body = neutron("DELETE", f"/v2.0/{coll}/{rid}")
                    notes.append(f"{p.key}: deleted leftover Neutron {coll[:-1]} {rid}"
                                 + ("" if st2 in (204, 404) else f" (FAILED {st2}: {body})"))
        except OSError as exc:
            notes.append(f"{p.key}: could not sweep Neutron ({exc}); resources it made: {p.proxy.created}")
        p.proxy.stop()
    # 5. files
    shutil.rmtree(b.work / "docker", ignore_errors=True)
    for f in (DOCKER_SOCK, DOCKER_PID):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    if b.args.keep_logs:
        notes.append(f"logs kept in {b.logs}")
    else:
        shutil.rmtree(b.work, ignore_errors=True)
        with contextlib.suppress(OSError):
            WORK_BASE.rmdir()
    if b.lock_fd is not None:
        with contextlib.suppress(OSError):
            (RUN_DIR / "lock").unlink()
            RUN_DIR.rmdir()
        os.close(b.lock_fd)
