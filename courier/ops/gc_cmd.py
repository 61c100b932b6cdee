"""``courier gc [--dry-run]``: the command around ``courier.ops.gc``."""

from __future__ import annotations

import argparse
from typing import Any

from courier.ops import common, gc


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "gc", help="remove what Courier created that nothing uses any more",
        description="Find Neutron ports, networks and subnetpools, OVS interfaces and veth pairs that Courier "
                    "created on this binding host and that the local Docker daemon no longer uses, and remove "
                    "them. Pre-existing networks, adopted ports and other subnetpools are never touched. Exit "
                    "status: 0 nothing left over (or all removed), 1 leftovers found with --dry-run, or a "
                    "removal or a check failed.")
    common.add_common(p, docker=True)
    p.add_argument("--dry-run", action="store_true", help="list the leftovers, remove nothing")
    p.add_argument("--min-age", type=_seconds, default=gc.DEFAULT_MIN_AGE, metavar="SECONDS",
                   help="leave Neutron resources younger than this alone: they may belong to a Docker call "
                        f"in progress (default {gc.DEFAULT_MIN_AGE:g})")
    p.add_argument("--any-host", action="store_true",
                   help="also networks without a host mark (made by kuryr-libnetwork or an older Courier); "
                        "only safe when this Docker daemon is the only one using the Neutron project")
    p.add_argument("--drain-pools", action="store_true",
                   help="also the idle ports of the warm pools (and their OVS interfaces): before removing a "
                        "network by hand or Courier from the host. Run it with Courier stopped: a running Courier "
                        "would hand out ports gc deletes")
    p.set_defaults(func=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def run(args: argparse.Namespace) -> int:
    from courier.config.options import binding_host_id
    from courier.neutron.api import Neutron
    from courier.neutron.connection import connect
    from courier.ops.docker import DockerClient, DockerError, snapshot
    from courier.ops.host import LocalHost

    common.setup_logging(args)
    conf = common.load_config(args)
    host_id = binding_host_id(conf)
    client = DockerClient(args.docker_host)
    try:
        docker = snapshot(client)
    except DockerError as exc:
        # Without Docker's view every port would look unused: never guess.
        raise RuntimeError(f"{exc}; gc needs the Docker daemon this host's containers run on "
                           "(--docker-host or DOCKER_HOST)") from exc
    problems: list[str] = []
    local = LocalHost(conf)
    host: LocalHost | None = local
    try:
        local.bridges()
    except Exception as exc:
        problems.append(f"cannot read the local OVSDB ({exc}): OVS interfaces and veths were not checked")
        host = None
    try:
        plan, outcomes = gc.reconcile(Neutron(connect(conf)), docker, host, host_id, dry_run=args.dry_run,
                                      min_age=args.min_age, any_host=args.any_host, drain_pools=args.drain_pools)
    finally:
        local.close()
    failed = [o for o in outcomes if not o.done]
    if args.json:
        results = ([{**i.as_dict(), "result": "would remove", "error": ""} for i in plan.leftovers]
                   if args.dry_run else [o.as_dict() for o in outcomes])
        common.print_json({"host": host_id, "docker_host": client.host, "dry_run": args.dry_run,
                           "min_age": args.min_age, "leftovers": results,
                           "kept": [k.as_dict() for k in plan.kept], "problems": problems})
    else:
        _print(plan, outcomes, args, host_id, client.host, problems)
    if failed or problems or (args.dry_run and plan.leftovers):
        return common.FINDINGS
    return common.OK


def _print(plan: gc.Plan, outcomes: list[gc.Outcome], args: argparse.Namespace, host_id: str, docker_host: str,
           problems: list[str]) -> None:
    print(f"binding host {host_id}, Docker {docker_host}, min age {args.min_age:g} s"
          + (" (dry run: nothing removed)" if args.dry_run else ""))
    if not plan.leftovers:
        print("no leftovers")
    else:
        result = {id(o.leftover): ("removed" if o.done else f"FAILED: {o.error}") for o in outcomes}
        rows = [["KIND", "ID", "NAME", "REASON", "RESULT"]]
        rows += [[i.kind, i.id, i.name, i.reason, "would remove" if args.dry_run else result.get(id(i), "")]
                 for i in plan.leftovers]
        print(common.table(rows))
    if plan.kept:
        print("\nleft alone:")
        print(common.table([["KIND", "ID", "WHY"], *[[k.kind, k.id, k.reason] for k in plan.kept]], "  "))
    for problem in problems:
        print(f"\nproblem: {problem}")
