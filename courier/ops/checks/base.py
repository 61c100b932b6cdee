"""What every doctor check shares: findings, severities, and the context earlier checks fill in."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from oslo_config import cfg

OK, WARNING, ERROR, SKIPPED = "ok", "warning", "error", "skipped"


@dataclasses.dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    message: str
    fix: str = ""


class Context:
    """What the checks learn as they go, so that a later check can skip what an earlier one found broken."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.conf: cfg.ConfigOpts | None = None
        self.neutron: Any = None
        self.extensions: set[str] = set()
        self.local: Any = None
        self.auth_problem = ""  # [neutron] credentials found incomplete by the config check


Check = Callable[[Context], Iterator[Finding]]


def local(ctx: Context) -> Any:
    """This host's OVSDB and devices (``courier.ops.host.LocalHost``), opened once per doctor run."""
    if ctx.local is None:
        from courier.ops.host import LocalHost

        assert ctx.conf is not None
        ctx.local = LocalHost(ctx.conf)
    return ctx.local


def deployment(conf: cfg.ConfigOpts) -> str:
    return str(conf.deployment_type)
