"""Flags and the main sequence: preflight, set-up, workload, report, cleanup (always)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import time
from pathlib import Path

from .bench import Bench, preflight, setup
from .cleanup import cleanup
from .common import Interrupted, log, on_signal
from .plugins import parse_order
from .report import as_json, report
from .workload import workload


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Courier (cold, warm) vs kuryr-libnetwork benchmark "
                                             "(see bench/README.md)")
    ap.add_argument("--containers", type=int, default=10, help="sequential docker run/rm lifecycles per plugin (10)")
    ap.add_argument("--concurrent", type=int, default=10, help="containers started in parallel (10; 0: skip)")
    ap.add_argument("--order", default="cold,warm,upstream",
                    help="plugins and order: cold,warm,upstream (default); courier = cold,warm")
    ap.add_argument("--replay", type=int, default=30,
                    help="replayed dockerd lifecycles per plugin, one at a time (30; 0: skip)")
    ap.add_argument("--replay-parallel", type=int, default=40,
                    help="replayed lifecycles per plugin with --replay-concurrency in parallel (40; 0: skip)")
    ap.add_argument("--replay-concurrency", type=int, default=8, help="threads for --replay-parallel (8)")
    ap.add_argument("--rm-runs", type=int, default=10,
                    help="docker run --rm true per plugin network and with --net none (10; 0: skip)")
    ap.add_argument("--pool-min", type=int, default=8, help="Courier warm: [vif_pool] ports_pool_min (8)")
    ap.add_argument("--pool-batch", type=int, default=8, help="Courier warm: [vif_pool] ports_pool_batch (8)")
    ap.add_argument("--pool-wait", type=float, default=60,
                    help="Courier warm: seconds to wait for a full pool before measuring on a network (60)")
    ap.add_argument("--upstream-port", type=int, default=23750, help="kuryr-server TCP port (23750)")
    ap.add_argument("--cmd-timeout", type=float, default=60, help="seconds for one docker run/rm (60)")
    ap.add_argument("--budget", type=float, default=900,
                    help="seconds for the whole run (a first-run pip install not counted); on a slow stack "
                         "later steps are shortened or skipped to fit (900)")
    ap.add_argument("--keep-logs", action="store_true", help="keep plugin/dockerd logs and per-call JSONL")
    ap.add_argument("--no-install", action="store_true", help="do not pip-install kuryr-libnetwork if missing")
    ap.add_argument("--json", metavar="FILE", help="also write raw results as JSON")
    args = ap.parse_args(argv)
    try:
        args.order = parse_order(args.order)
    except ValueError as exc:
        ap.error(str(exc))
    if args.containers < 1:
        ap.error("--containers must be >= 1")
    if args.replay_concurrency < 1:
        ap.error("--replay-concurrency must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    t0 = time.monotonic()
    bench = Bench(args)
    rc = 0
    text = ""
    try:
        preflight(bench)
        setup(bench)
        workload(bench)
        text = report(bench)
        if args.json:
            Path(args.json).write_text(json.dumps(as_json(bench), indent=1, default=str))
        if any(p.errors for p in bench.plugins.values()):
            rc = 1
    except (Interrupted, KeyboardInterrupt) as exc:
        log(f"interrupted ({exc})")
        rc = 130
    except SystemExit as exc:
        if isinstance(exc.code, str):
            log(exc.code)
        rc = 2
    except Exception as exc:
        log(f"benchmark failed: {type(exc).__name__}: {exc}")
        rc = 1
        with contextlib.suppress(Exception):
            text = report(bench)
    finally:
        try:
            cleanup(bench)
        except Exception as exc:  # report, but never hide the figures
            log(f"cleanup error: {type(exc).__name__}: {exc}")
            rc = rc or 1
    if text:
        print(text)
    if bench.cleanup_notes:
        print("\ncleanup: " + "; ".join(bench.cleanup_notes))
    print(f"\n(total {time.monotonic() - t0:.0f}s)")
    return rc
