"""Docker-CLI workloads on the private dockerd: sequential lifecycles, `docker run --rm` against `--net none`,
and containers started in parallel. Plugins take turns where they can, so that load from others on the shared
stack hits all alike."""

from __future__ import annotations

import statistics
import subprocess
import textwrap
import time
from typing import TYPE_CHECKING

from .common import IMAGE, cpu_seconds, log, neutron_up, rss_mib, tail
from .dockerd import docker, docker_popen
from .plugins import Plugin, wait_pool
from .proxy import outage_calls

if TYPE_CHECKING:
    from .bench import Bench


def settle(p: Plugin, idle: bool = True) -> None:
    """Wait until the plugin's proxy has been quiet for 0.25 s: late calls belong to the step that caused them."""
    p.proxy.wait_quiet(0.25, 3)
    if idle:
        p.proxy.set_phase("idle")


def outage(p: Plugin, phase: str) -> bool:
    """Did Neutron itself fail (connection refused/reset at the proxy) during this phase?"""
    if outage_calls(p.proxy, phase):
        p.res["outages"] = p.res.get("outages", 0) + 1
        return True
    return False


def create_network(b: Bench, p: Plugin, which: str, timeout: float = 60) -> str | None:
    cidr = p.cidrs[which]
    name = f"bench-{p.key}-{which}"
    gw = str(next(cidr.hosts()))
    phase = "net-create" if which == "seq" else "conc-net-create"
    p.proxy.set_phase(phase)
    t0 = time.monotonic()
    rc, out, err, dt = docker("network", "create", "--driver", p.driver, "--ipam-driver", p.driver,
                              "--subnet", str(cidr), "--gateway", gw, name, timeout=timeout)
    if p.key == "warm":
        p.proxy.set_phase(f"pool-{which}")      # what follows the reply is the pool filling
    settle(p)
    p.res[f"{phase}_time"] = dt
    p.res[f"{phase}_rc"] = rc
    if rc:
        p.fail(f"docker network create {name}", err)
        return None
    p.networks.append(out)
    wait_pool(p, which, b.args.pool_min, b.args.pool_wait, since=t0)
    return name


def remove_network(b: Bench, p: Plugin, name: str, phase: str, timeout: float = 60) -> None:
    p.proxy.set_phase(phase)
    t_end = time.monotonic() + max(5.0, timeout)
    rc, _, err, dt = docker("network", "rm", name, timeout=max(5.0, timeout))
    if rc and "active endpoints" in err and t_end - time.monotonic() > 5:
        # a killed `docker run` that dockerd was still finishing: remove it and try once more
        p.proxy.wait_quiet(1.0, min(10, max(1, t_end - time.monotonic() - 5)))
        _, out, _, _ = docker("ps", "-aq", "--filter", f"network={name}", timeout=10)
        if out.split():
            docker("rm", "-f", *out.split(), timeout=max(5, t_end - time.monotonic() - 5))
        rc, _, err, dt2 = docker("network", "rm", name, timeout=max(5, t_end - time.monotonic()))
        dt += dt2
    settle(p)
    p.res[f"{phase}_time"] = dt
    p.res[f"{phase}_rc"] = rc
    if rc:
        p.fail(f"docker network rm {name}", err)


def lifecycle(b: Bench, p: Plugin, net: str, i: int) -> bool | None:
    """docker run -d + docker rm -f. True: counted; False: failed (stop this plugin); None: disturbed by a
    Neutron outage or restart (not counted, go on)."""
    t0 = time.monotonic()
    p.proxy.set_phase(f"run-{i}")
    rc, cid, err, dt = docker("run", "-d", "--net", net, IMAGE, "sleep", "60",
                              timeout=b.step_timeout(b.args.cmd_timeout))
    settle(p)
    rc2, err2, dt2 = None, "", 0.0
    if rc == 0:
        p.proxy.set_phase(f"rm-{i}")
        rc2, _, err2, dt2 = docker("rm", "-f", cid, timeout=b.step_timeout(b.args.cmd_timeout))
        settle(p)
    elif cid:   # a half-created container may exist: remove it so that network rm can work
        docker("rm", "-f", cid, timeout=60)
        settle(p)
    bad = outage(p, f"run-{i}") or outage(p, f"rm-{i}") or b.watch.disturbed(t0, time.monotonic())
    if bad:
        p.res["disturbed"].append(i)
        what = f"docker run #{i + 1}" if rc else f"docker rm -f #{i + 1}" if rc2 else ""
        if what:
            p.errors.append(f"{what} failed during a Neutron outage/restart (not counted): {err or err2}")
        log(f"{p.title}: lifecycle #{i + 1} overlapped a Neutron outage/restart: not counted")
        if not neutron_up() and not b.wait_neutron():
            return False
        return None
    late = " (time budget used up)" if b.time_left() <= 0 else ""
    if rc:
        p.fail(f"docker run #{i + 1} on {net}{late}", err)
        return False
    if rc2:
        p.fail(f"docker rm -f #{i + 1}{late}", err2)
        return False
    p.res["run_times"].append(dt)
    p.res["rm_times"].append(dt2)
    p.res["lifecycles"].append(i)
    return True


def lifecycle_estimate(p: Plugin) -> float:
    """Seconds one docker run -d + rm -f took this plugin so far (5 s before any)."""
    return (statistics.mean(p.res["run_times"]) + statistics.mean(p.res["rm_times"])
            if p.res.get("run_times") else 5.0)


def conc_estimate(b: Bench, p: Plugin) -> float:
    """Seconds the concurrent phase will likely need: from this plugin's sequential lifecycles so far."""
    return max(20.0, 10 + b.args.concurrent * lifecycle_estimate(p) * 0.6)


def rest_estimate(b: Bench, ps: list[Plugin], with_rm_runs: bool = True) -> float:
    """Seconds the phases after the sequential lifecycles will likely need (kept free by the sequential loop)."""
    from .replay import replay_estimate
    t = 1.2 * sum(conc_estimate(b, q) for q in ps) if b.args.concurrent else 10
    t += sum(replay_estimate(b, q) for q in ps)
    if with_rm_runs:
        t += b.args.rm_runs * (0.5 + sum(lifecycle_estimate(q) for q in ps))
    return t


def sequential(b: Bench, ps: list[Plugin]) -> None:
    """Network create, N lifecycles, the `run --rm` runs, network rm; the plugins take turns (who goes first
    alternates). Lifecycles disturbed by a Neutron outage are repeated (up to 5 extra rounds)."""
    n = b.args.containers
    nets: dict[str, str | None] = {}
    for p in ps:
        p.res["run_times"], p.res["rm_times"], p.res["lifecycles"], p.res["disturbed"] = [], [], [], []
        t0 = time.monotonic()
        nets[p.key] = create_network(b, p, "seq")
        p.res["net_create_disturbed"] = b.watch.disturbed(t0, time.monotonic()) or outage(p, "net-create")
    active = [p for p in ps if nets[p.key]]
    i = 0
    while active and i < n + 5:
        measured = all(p.res["run_times"] for p in active)     # estimates only from measured lifecycles
        if measured and b.time_left() < rest_estimate(b, ps):   # keep room for the phases after this one
            for p in active:
                p.errors.append(f"time budget: stopped after {len(p.res['lifecycles'])} of {n} lifecycles")
            break
        for p in list(active if i % 2 == 0 else reversed(active)):
            done = lifecycle(b, p, nets[p.key], i)  # type: ignore[arg-type]
            if done is False or len(p.res["lifecycles"]) >= n:
                active.remove(p)
        i += 1
    rm_runs(b, [p for p in ps if nets[p.key]], {k: v for k, v in nets.items() if v})
    for p in ps:
        if nets[p.key]:
            t0 = time.monotonic()
            remove_network(b, p, nets[p.key], "net-rm",  # type: ignore[arg-type]
                           timeout=max(10, min(60, b.time_left() + 10)))
            p.res["net_rm_disturbed"] = b.watch.disturbed(t0, time.monotonic()) or outage(p, "net-rm")


def rm_runs(b: Bench, ps: list[Plugin], nets: dict[str, str]) -> None:
    """`docker run --rm busybox:local true` on each plugin's network and with `--net none`, R times each, in
    turns (the order rotates every round). The CLI returns once the container is removed, so each time covers
    network setup and teardown."""
    r = b.args.rm_runs
    b.res["none_times"] = []
    for p in ps:
        p.res["rr_times"], p.res["rr_idx"] = [], []
    if r <= 0:
        return
    log(f"--- docker run --rm {IMAGE} true: {r} x on each network and with --net none, in turns")
    active: list[Plugin | None] = [None, *ps]
    for i in range(r):
        if i and b.time_left() < rest_estimate(b, ps, with_rm_runs=False) + (r - i) * 0.5:
            b.res["rr_cut"] = f"time budget: stopped after {i} of {r} rounds"
            for p in ps:
                p.errors.append(f"time budget: docker run --rm stopped after {i} of {r} rounds")
            break
        k = i % len(active)
        for q in active[k:] + active[:k]:
            if q is None:
                rc, _, err, dt = docker("run", "--rm", "--net", "none", IMAGE, "true",
                                        timeout=b.step_timeout(b.args.cmd_timeout))
                if rc == 0:
                    b.res["none_times"].append(dt)
                else:
                    b.res.setdefault("none_errors", []).append(err)
                continue
            p = q
            p.proxy.set_phase(f"rr-{i}")
            t0 = time.monotonic()
            rc, _, err, dt = docker("run", "--rm", "--net", nets[p.key], IMAGE, "true",
                                    timeout=b.step_timeout(b.args.cmd_timeout))
            settle(p)
            if outage(p, f"rr-{i}") or b.watch.disturbed(t0, time.monotonic()):
                p.res.setdefault("rr_disturbed", []).append(i)
                continue
            if rc:
                p.fail(f"docker run --rm #{i + 1} on {nets[p.key]}", err)
                active.remove(p)
                continue
            p.res["rr_times"].append(dt)
            p.res["rr_idx"].append(i)
        if not any(q is not None for q in active):
            break


def concurrent(b: Bench, p: Plugin, share: float) -> None:
    """``share``: seconds this phase may take (in proportion to the plugin's estimate: same slack for all)."""
    m = b.args.concurrent
    p.res["conc"] = {"ok": 0, "n": m}
    if m <= 0 or share < 30:
        p.res["conc"]["skipped"] = True
        if m > 0:
            p.errors.append("concurrent phase skipped: time budget (--budget) used up")
        return
    t_phase = time.monotonic()
    phase_end = t_phase + share
    net = create_network(b, p, "conc", timeout=max(10, min(60, share - 20)))
    if net is None:
        p.res["conc"]["failed_create"] = True
        return
    p.proxy.set_phase("conc-run")
    t0 = time.monotonic()
    procs = [docker_popen("run", "-d", "--net", net, IMAGE, "sleep", "60") for _ in range(m)]
    done: dict[int, float] = {}
    # starting may take 65% of what is left of this plugin's share; the rest is for removing them
    t_end = t0 + max(10.0, min(b.args.cmd_timeout, (phase_end - t0) * 0.65))
    while len(done) < m and time.monotonic() < t_end:
        for i, pr in enumerate(procs):
            if i not in done and pr.poll() is not None:
                done[i] = time.monotonic() - t0
        time.sleep(0.02)
    cids, errs = [], []
    for i, pr in enumerate(procs):
        if i not in done:
            pr.kill()
            errs.append(f"container {i + 1}: docker run still running after {t_end - t0:.0f}s: killed")
        out, err = pr.communicate()
        if pr.returncode == 0 and out.strip():
            cids.append(out.strip())
        elif i in done:
            errs.append(f"container {i + 1}: {err.strip()}")
    # killed CLIs leave dockerd (and the plugin) working on them: their calls still belong here
    if errs:
        p.proxy.wait_quiet(1.0, 10)
    settle(p, idle=False)
    c = p.res["conc"]
    c["ok"] = len(cids)
    c["all_started"] = max(done.values()) if done and len(cids) == m else None
    c["times"] = sorted(done.values())
    if errs:
        p.fail(f"concurrent docker run ({len(errs)} of {m})", "\n".join(errs))
    # remove them in parallel too (and any failed leftovers by name filter afterwards)
    p.proxy.set_phase("conc-rm")
    t0 = time.monotonic()
    rms = [docker_popen("rm", "-f", cid) for cid in cids]
    rm_errs = []
    for pr in rms:
        try:
            _, err = pr.communicate(timeout=max(10, min(t0 + b.args.cmd_timeout, phase_end - 10)
                                                - time.monotonic()))
        except subprocess.TimeoutExpired:
            pr.kill()
            err = "timed out"
        if pr.returncode:
            rm_errs.append(err.strip())
    c["all_removed"] = time.monotonic() - t0 if cids and not rm_errs else None
    settle(p)
    if rm_errs:
        p.fail("concurrent docker rm -f", "\n".join(rm_errs))
    # containers that failed to start may still exist (Created state): remove before network rm
    # (a killed `docker run` leaves dockerd finishing it: sweep until the network has no container twice)
    empty, sweep_end = 0, max(phase_end - 10, time.monotonic() + 5)
    while empty < 2 and time.monotonic() < sweep_end:
        rc, out, _, _ = docker("ps", "-aq", "--filter", f"network={net}", timeout=20)
        if rc == 0 and out.split():
            empty = 0
            docker("rm", "-f", *out.split(), timeout=max(10, phase_end - 5 - time.monotonic()))
        else:
            empty += 1
            time.sleep(0.5)
    settle(p)
    remove_network(b, p, net, "conc-net-rm", timeout=max(20, min(phase_end - time.monotonic(), b.time_left() + 10)))
    if b.watch.disturbed(t_phase, time.monotonic()) or any(
            outage(p, ph) for ph in ("conc-net-create", "conc-run", "conc-rm", "conc-net-rm")):
        c["disturbed"] = True
        log(f"{p.title}: the concurrent phase overlapped a Neutron outage/restart: figures marked")


def measure_after(b: Bench, p: Plugin) -> None:
    from .cleanup import leak_check
    if p.proc and p.proc.poll() is None:
        p.res["rss"] = rss_mib(p.proc.pid)
        p.res["hwm"] = rss_mib(p.proc.pid, "VmHWM")
        p.res["cpu"] = (cpu_seconds(p.proc.pid) or 0) - p.res.get("cpu0", 0)
    else:
        p.errors.append(f"{p.title} process is gone (exit {p.proc.returncode if p.proc else '?'}):\n"
                        + textwrap.indent(tail(p.log_path), "    "))
    p.res["leaks"] = leak_check(b, p)


def workload(b: Bench) -> None:
    from .replay import replay_all
    ps = list(b.plugins.values())
    for p in ps:
        p.res["cpu0"] = (cpu_seconds(p.proc.pid) or 0) if p.proc else 0
    log(f"--- sequential: network create, {b.args.containers} x (docker run -d + docker rm -f), network rm; "
        f"plugins take turns")
    sequential(b, ps)
    replay_all(b, ps)
    # each plugin's concurrent phase gets time in proportion to what its lifecycles took (same slack for all)
    est = {p.key: conc_estimate(b, p) for p in ps}
    scale = b.time_left() / sum(est.values())
    for p in ps if b.args.concurrent > 0 else []:
        share = min(150.0, est[p.key] * scale)
        log(f"--- {p.title}: {b.args.concurrent} containers started in parallel (time allowed {share:.0f}s)")
        concurrent(b, p, share)
    for p in ps:
        measure_after(b, p)
