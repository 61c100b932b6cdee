"""What the operator commands share: options, config loading, JSON/text output, exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from oslo_config import cfg

from courier.config import options

OK, FINDINGS, USAGE = 0, 1, 2
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def add_common(parser: argparse.ArgumentParser, *, docker: bool = False) -> None:
    parser.add_argument("--config-file", action="append", metavar="PATH",
                        help="kuryr.conf to read (repeatable; default /etc/kuryr/kuryr.conf)")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--debug", action="store_true", help="log debug messages on stderr")
    if docker:
        parser.add_argument("--docker-host", metavar="URL",
                            help=f"Docker daemon to ask (default: $DOCKER_HOST, else {DEFAULT_DOCKER_HOST})")


def config_argv(args: argparse.Namespace) -> list[str]:
    argv: list[str] = []
    for path in getattr(args, "config_file", None) or []:
        argv += ["--config-file", path]
    return argv


def load_config(args: argparse.Namespace) -> cfg.ConfigOpts:
    """A private ConfigOpts (not the global one), so that a command can be run more than once per process."""
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    return options.load(config_argv(args), conf)


def setup_logging(args: argparse.Namespace) -> None:
    # Without --debug only errors: what a command finds is in its output, retries and the like are noise.
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("urllib3", "keystoneauth", "openstack", "stevedore", "ovsdbapp"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.debug else logging.CRITICAL)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def table(rows: list[list[str]], indent: str = "") -> str:
    """Left-aligned columns, as ``docker ps`` prints them."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)
