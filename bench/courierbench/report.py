"""The figures: one table, a column per plugin, ratios between them, targets; then per-call breakdowns.

Ratios read "how many times better the second-named plugin is": for a figure where less is better (calls,
time, memory) it is first/second (kuryr/warm = 3.00x: kuryr needs 3 times what Courier warm needs); for a
figure where more is better (lifecycles/s, containers started) it is second/first. Above 1: the second-named
is better.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .common import KURYR_VENV, KURYR_VERSION, courier_revision, pct
from .plugins import SPECS, Plugin
from .proxy import calls_in, pattern

if TYPE_CHECKING:
    from .bench import Bench

COLUMNS = ("cold", "warm", "upstream")                     # display order
HEADERS = {"cold": "Courier cold", "warm": "Courier warm", "upstream": f"kuryr {KURYR_VERSION.split('.')[0]}"}
PAIRS = (("upstream", "cold", "kuryr/cold"), ("upstream", "warm", "kuryr/warm"), ("cold", "warm", "cold/warm"))


@dataclass
class Row:
    label: str
    values: dict[str, float | None] = field(default_factory=dict)     # plugin key -> value
    nd: int = 0                      # decimals
    higher_better: bool = False
    target: str = ""
    ratios: bool = True


def fmt(v: float | None, nd: int = 0) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def ratio(a: float | None, b: float | None) -> str:
    """a / b as ``1.23x``; ``-`` when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def pair_ratio(row: Row, first: str, second: str) -> str:
    """How many times better ``second`` is than ``first`` on this row (see the module docstring)."""
    if not row.ratios:
        return "-"
    a, b = row.values.get(first), row.values.get(second)
    return ratio(b, a) if row.higher_better else ratio(a, b)


def render_table(rows: list[Row], keys: Iterable[str]) -> list[str]:
    cols = [k for k in COLUMNS if k in set(keys)]
    pairs = [(a, b, lab) for a, b, lab in PAIRS if a in cols and b in cols]
    lw = max([len(r.label) for r in rows] + [6]) + 2
    head = f"{'metric':<{lw}}" + "".join(f"{HEADERS[k]:>14}" for k in cols) \
        + "".join(f"{lab:>12}" for _, _, lab in pairs) + f"{'target':>10}"
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r.label:<{lw}}" + "".join(f"{fmt(r.values.get(k), r.nd):>14}" for k in cols)
                   + "".join(f"{pair_ratio(r, a, b):>12}" for a, b, _ in pairs) + f"{r.target:>10}")
    return out


def mean_or_none(v: list[float] | list[int]) -> float | None:
    return statistics.mean(v) if v else None


def ms(v: list[float], f: Callable[[list[float]], float]) -> float | None:
    return f(v) * 1000 if v else None


def p50(v: list[float]) -> float:
    return pct(v, 50)


def p95(v: list[float]) -> float:
    return pct(v, 95)


def lc_calls(p: Plugin) -> list[int]:
    return [len(calls_in(p.proxy, f"run-{i}", f"rm-{i}")) for i in p.res.get("lifecycles", [])]


def rr_delta(b: Bench, p: Plugin, f: Callable[[list[float]], float]) -> float | None:
    none, mine = b.res.get("none_times") or [], p.res.get("rr_times") or []
    return f(mine) - f(none) if none and mine else None


def build_rows(b: Bench) -> list[Row]:
    ps = list(b.plugins.values())
    rows: list[Row] = []

    def row(label: str, get: Callable[[Plugin], float | None], nd: int = 0, **kw: object) -> None:
        rows.append(Row(label, {p.key: get(p) for p in ps}, nd, **kw))  # type: ignore[arg-type]

    def calls(p: Plugin, *phases: str) -> list:
        return calls_in(p.proxy, *phases)

    def lcs(p: Plugin) -> list[int]:
        return p.res.get("lifecycles", [])

    row("Neutron calls: network create",
        lambda p: len(calls(p, "net-create")) if "net-create_time" in p.res else None)
    row("Neutron calls: per container lifecycle (mean)", lambda p: mean_or_none(lc_calls(p)), 1)
    row("  of which docker run -d", lambda p: mean_or_none([len(calls(p, f"run-{i}")) for i in lcs(p)]), 1)
    row("  of which docker rm -f", lambda p: mean_or_none([len(calls(p, f"rm-{i}")) for i in lcs(p)]), 1)
    row("Neutron calls: network rm", lambda p: len(calls(p, "net-rm")) if "net-rm_time" in p.res else None)
    row("Neutron calls: plugin start-up", lambda p: p.res.get("startup_calls"), ratios=False)
    row("Neutron calls: warm pool fill (after network create)",
        lambda p: sum(1 for c in p.proxy.calls if c.phase.startswith("pool-")), ratios=False)
    row("Neutron calls: between phases (background)", lambda p: len(calls(p, "idle")), ratios=False)
    row("docker run -d: mean (ms)", lambda p: ms(p.res.get("run_times", []), statistics.mean))
    row("docker run -d: p50 (ms)", lambda p: ms(p.res.get("run_times", []), p50))
    row("docker run -d: p95 (ms)", lambda p: ms(p.res.get("run_times", []), p95))
    row("docker rm -f: mean (ms)", lambda p: ms(p.res.get("rm_times", []), statistics.mean))
    row("docker rm -f: p50 (ms)", lambda p: ms(p.res.get("rm_times", []), p50))
    row("docker rm -f: p95 (ms)", lambda p: ms(p.res.get("rm_times", []), p95))
    row("docker network create (ms)", lambda p: (p.res.get("net-create_time") or 0) * 1000 or None)
    row("docker network rm (ms)", lambda p: (p.res.get("net-rm_time") or 0) * 1000 or None)
    # replay of dockerd's calls
    r1 = lambda p, k: p.res.get("rp1", {}).get(k) or []  # noqa: E731
    r8 = lambda p, k: p.res.get("rp8", {}).get(k) or []  # noqa: E731
    n1, n8, c8 = b.args.replay, b.args.replay_parallel, b.args.replay_concurrency
    if n1 > 0:
        row("replay C=1: setup p50 (ms)", lambda p: ms(r1(p, "setup"), p50), target="<= 75")
        row("replay C=1: setup p95 (ms)", lambda p: ms(r1(p, "setup"), p95))
        row("replay C=1: teardown p50 (ms)", lambda p: ms(r1(p, "teardown"), p50), target="<= 50")
        row("replay C=1: teardown p95 (ms)", lambda p: ms(r1(p, "teardown"), p95))
        row("replay C=1: transport retries (dockerd backoff)", lambda p: p.res.get("rp1", {}).get("retries"),
            ratios=False)
        row(f"replay C=1: lifecycles counted (of {n1})",
            lambda p: len(r1(p, "lifecycles")) if "rp1" in p.res else None, ratios=False)
        row("replay C=1: Neutron calls per lifecycle (mean)", lambda p: mean_or_none(
            [len(calls(p, f"rp1-{i}")) for i in r1(p, "lifecycles")]), 1)
    if n8 > 0:
        row(f"replay C={c8}: lifecycles/s", lambda p: p.res.get("rp8", {}).get("per_s"), 2, higher_better=True,
            target=">= 10")
        row(f"replay C={c8}: lifecycles completed (of {n8})",
            lambda p: p.res["rp8"]["ok"] if "rp8" in p.res else None, ratios=False)
        row(f"replay C={c8}: transport retries (dockerd backoff)", lambda p: p.res.get("rp8", {}).get("retries"),
            ratios=False)
        row(f"replay C={c8}: setup p50 (ms)", lambda p: ms(r8(p, "setup"), p50))
        row(f"replay C={c8}: teardown p50 (ms)", lambda p: ms(r8(p, "teardown"), p50))
        row(f"replay C={c8}: Neutron calls per lifecycle (mean)", lambda p: len(calls(p, "rp8")) / p.res["rp8"]["ok"]
            if p.res.get("rp8", {}).get("ok") else None, 1)
    if b.args.rm_runs > 0:
        rr = lambda p: p.res.get("rr_times") or []  # noqa: E731
        row("docker run --rm true: mean (s)", lambda p: statistics.mean(rr(p)) if rr(p) else None, 3)
        row("docker run --rm true: p50 (s)", lambda p: pct(rr(p), 50) if rr(p) else None, 3)
        row("  slower than --net none: mean (s)", lambda p: rr_delta(b, p, statistics.mean), 3, target="<= 0.15")
        row("  slower than --net none: p50 (s)", lambda p: rr_delta(b, p, p50), 3)
        row("docker run --rm: Neutron calls per run (mean)", lambda p: mean_or_none(
            [len(calls(p, f"rr-{i}")) for i in p.res.get("rr_idx", [])]), 1)
    work = lambda p: [c for c in p.proxy.calls if c.phase != "startup"]  # noqa: E731
    row("Neutron latency per call: mean (ms)", lambda p: ms([c.latency for c in work(p)], statistics.mean), 1)
    row("  control: DELETE /v2.0/ports/{id}, same call in all (ms)", lambda p: ms(
        [c.latency for i in lcs(p) for c in calls(p, f"rm-{i}")
         if pattern(c.method, c.path) == "DELETE /v2.0/ports/{id}"], statistics.mean))
    row("Neutron time per lifecycle: mean (ms)", lambda p: mean_or_none(
        [sum(c.latency for c in calls(p, f"run-{i}", f"rm-{i}")) * 1000 for i in lcs(p)]))
    m = b.args.concurrent
    conc_ran = lambda p: "conc" in p.res and not p.res["conc"].get("skipped")  # noqa: E731
    row(f"concurrent: {m} x docker run -d, all started (s)", lambda p: p.res.get("conc", {}).get("all_started"), 2)
    row("concurrent: containers started OK", lambda p: p.res.get("conc", {}).get("ok") if conc_ran(p) else None,
        higher_better=True)
    row(f"concurrent: Neutron calls ({m} runs)", lambda p: len(calls(p, "conc-run")) if conc_ran(p) else None)
    row(f"concurrent: {m} x docker rm -f, all removed (s)", lambda p: p.res.get("conc", {}).get("all_removed"), 2)
    row("lifecycles not counted (Neutron outage/restart)", lambda p: len(p.res.get("disturbed", []))
        + len(p.res.get("rp1", {}).get("disturbed", [])), ratios=False)
    row("Neutron errors at the proxy (502: Neutron down)", lambda p: sum(1 for c in p.proxy.calls if c.status == 502),
        ratios=False)
    row("plugin RSS idle, after start-up (MiB)", lambda p: p.res.get("rss_idle"), 1)
    row("plugin RSS after workload (MiB)", lambda p: p.res.get("rss"), 1)
    row("plugin peak RSS, VmHWM (MiB)", lambda p: p.res.get("hwm"), 1)
    row("plugin CPU time for the workload (s)", lambda p: p.res.get("cpu"), 2)
    return rows


def breakdown(p: Plugin, what: str, phases_of: Callable[[int], tuple[str, ...]], done: list[int],
              step: Callable[[str], str]) -> list[str]:
    if not done:
        return [f"{p.title}: no completed {what} to break down", ""]
    i = done[1] if len(done) > 1 else done[0]
    seq = calls_in(p.proxy, *phases_of(i))
    counts = [len(calls_in(p.proxy, *phases_of(j))) for j in done]
    out = [f"{p.title}: Neutron calls of {what} #{i + 1} ({len(seq)} calls; "
           f"min/max over {len(counts)}: {min(counts)}/{max(counts)})"]
    out += [f"  {step(c.phase)}  {c.status:3d} {c.latency * 1000:7.1f} ms  {pattern(c.method, c.path)}" for c in seq]
    return [*out, ""]


def report(b: Bench) -> str:
    ps = list(b.plugins.values())
    out: list[str] = []
    w = out.append
    rows = build_rows(b)
    n_ok = {p.key: len(p.res.get("lifecycles", [])) for p in ps}
    w(f"Courier (cold, warm) vs kuryr-libnetwork {KURYR_VERSION} on the local Neutron/OVN stack "
      f"({time.strftime('%Y-%m-%d %H:%M')}, host {socket.gethostname()}, {os.cpu_count()} CPUs, "
      f"load average at start/end {b.load[0]:.1f}/{os.getloadavg()[0]:.1f})")
    w(f"Courier: {courier_revision()}; upstream: kuryr-libnetwork {KURYR_VERSION} from {KURYR_VENV}")
    w("sequential lifecycles completed: " + ", ".join(f"{p.title} {n_ok[p.key]}/{b.args.containers}" for p in ps)
      + "; CIDRs: " + ", ".join(f"{p.key} " + "+".join(str(c) for c in p.cidrs.values()) for p in ps))
    if "warm" in b.plugins:
        pool = b.plugins["warm"].res.get("pool", {})

        def state(v: dict) -> str:
            return v.get("note") or f"filled, {v['count']} ports after {v['waited']:.1f}s"
        w(f"Courier warm: [vif_pool] enabled, ports_pool_min = {b.args.pool_min}, ports_pool_batch = "
          f"{b.args.pool_batch}; pool before measuring: " + (", ".join(
              f"{k} {state(v)}" for k, v in pool.items()) or "not checked"))
    if b.args.rm_runs > 0:
        none = b.res.get("none_times") or []
        w("docker run --rm busybox:local true --net none: "
          + (f"mean {statistics.mean(none):.3f} s, p50 {pct(none, 50):.3f} s ({len(none)} runs)" if none
             else "no successful run"))
        for e in b.res.get("none_errors", [])[:3]:
            w(f"  --net none run failed: {e.splitlines()[0] if e else '?'}")
    if b.watch.restarts or b.watch.windows:
        w(f"NOTE: the shared Neutron was restarted {b.watch.restarts} time(s) / unavailable "
          f"{len(b.watch.windows)} time(s) during this run (by someone else); disturbed lifecycles are "
          f"left out of the figures and repeated.")
    for p in ps:
        marks = [what for key, what in (("net_create_disturbed", "network create"),
                                        ("net_rm_disturbed", "network rm")) if p.res.get(key)]
        if p.res.get("conc", {}).get("disturbed"):
            marks.append("concurrent phase")
        if p.res.get("rp8", {}).get("disturbed"):
            marks.append(f"replay C={b.args.replay_concurrency}")
        if marks:
            w(f"NOTE: {p.title}: {', '.join(marks)} overlapped a Neutron outage/restart: "
              f"those figures are not representative.")
    w("ratios: how many times better the second-named plugin is (less-is-better rows: first/second; "
      "lifecycles/s and containers started: second/first)")
    w("")
    out += render_table(rows, b.plugins)
    w("")
    for p in ps:
        out += breakdown(p, "docker container lifecycle", lambda i: (f"run-{i}", f"rm-{i}"),
                         p.res.get("lifecycles", []), lambda ph: "run" if ph.startswith("run") else "rm ")
    for p in ps:
        if "rp1" in p.res:
            out += breakdown(p, "replayed lifecycle (C=1)", lambda i: (f"rp1-{i}",),
                             p.res["rp1"]["lifecycles"], lambda ph: "rp ")
    out += kinds_table(ps)
    for p in ps:
        leaks = p.res.get("leaks") or []
        w(f"{p.title}: left behind after its workload: " + ("nothing" if not leaks else f"{len(leaks)} item(s)"))
        for lk in leaks:
            w(f"  {lk}")
    for p in ps:
        for e in p.errors:
            w("")
            w(f"{p.title} ERROR: {e}")
    return "\n".join(out)


def kinds_table(ps: list[Plugin]) -> list[str]:
    """Neutron calls per docker-CLI lifecycle by kind (mean), side by side."""
    pats: dict[str, dict[str, float]] = {}
    for p in ps:
        lcs = p.res.get("lifecycles", [])
        for i in lcs:
            for c in calls_in(p.proxy, f"run-{i}", f"rm-{i}"):
                d = pats.setdefault(pattern(c.method, c.path), {})
                d[p.key] = d.get(p.key, 0) + 1 / len(lcs)
    if not pats:
        return []
    keys = [k for k in COLUMNS if any(p.key == k for p in ps)]
    pw = max(len(k) for k in pats) + 2
    out = [f"{'calls per lifecycle by kind (mean)':<{pw}}" + "".join(f"{HEADERS[k]:>14}" for k in keys)]
    for k in sorted(pats, key=lambda k: (k.split()[1], k)):
        out.append(f"{k:<{pw}}" + "".join(f"{pats[k].get(c, 0):>14.1f}" for c in keys))
    return [*out, ""]


def as_json(b: Bench) -> dict:
    return {"args": {k: v for k, v in vars(b.args).items()}, "res": b.res,
            **{p.key: {"title": SPECS[p.key].title, "res": p.res, "errors": p.errors,
                       "calls": [c.__dict__ for c in p.proxy.calls]} for p in b.plugins.values()},
            "table": [{"label": r.label, "values": r.values, "target": r.target} for r in build_rows(b)]}
