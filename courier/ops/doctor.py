"""``courier doctor``: is this host set up for Courier? Each problem comes with the fix.

Checks (``courier.ops.checks``), in order: kuryr.conf parses and every value is valid; Neutron answers and has
the extensions Courier needs; the binding host id is a chassis/agent host Neutron can bind ports to; the OVS
bridge exists in the local OVSDB; the plugin socket directory and Docker's discovery paths; the default
subnetpools exist; Docker answers.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from courier.ops import common
from courier.ops.checks import CHECKS
from courier.ops.checks.base import ERROR, WARNING, Context, Finding


def diagnose(args: argparse.Namespace) -> list[Finding]:
    ctx = Context(args)
    findings: list[Finding] = []
    try:
        for check in CHECKS:
            try:
                findings.extend(check(ctx))
            except Exception as exc:  # a check that breaks is itself a finding, never a traceback
                findings.append(Finding(check.__name__.removeprefix("check_"), ERROR, f"check failed: {exc}"))
    finally:
        if ctx.local is not None:
            ctx.local.close()
    return findings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check configuration, Neutron, OVS and Docker plugin setup",
                       description="Check this host's Courier setup; every problem comes with a fix. "
                                   "Exit status: 0 no errors (warnings allowed), 1 errors found.")
    common.add_common(p, docker=True)
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    common.setup_logging(args)
    findings = diagnose(args)
    failing = {ERROR, WARNING} if args.strict else {ERROR}
    ok = not any(f.severity in failing for f in findings)
    if args.json:
        common.print_json({"ok": ok, "findings": [dataclasses.asdict(f) for f in findings]})
    else:
        for f in findings:
            label = f.severity.upper() if f.severity in (ERROR, WARNING) else f.severity
            print(f"{label:<8} {f.check:<19} {f.message}")
            if f.fix and f.severity in (ERROR, WARNING):
                print(f"{'':<8} {'':<19} fix: {f.fix}")
        errors = sum(f.severity == ERROR for f in findings)
        warnings = sum(f.severity == WARNING for f in findings)
        print(f"\n{errors} error(s), {warnings} warning(s)", file=sys.stderr if ok else sys.stdout)
    return common.OK if ok else common.FINDINGS
