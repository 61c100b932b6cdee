"""``courier health``: is the plugin answering Docker? A Plugin.Activate on its socket, as dockerd sends it.

Cheap enough for a container healthcheck every few seconds (no Neutron or OVSDB call: ``courier doctor`` is the
thorough check). Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from courier.ops import common
from courier.ops.docker import _UnixConnection

ACTIVATE_TIMEOUT = 5.0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("health", help="check that the plugin socket answers Plugin.Activate (for healthchecks)",
                       description="POST /Plugin.Activate to <plugin_dir>/<driver_name>.sock. "
                                   "Exit status: 0 healthy, 1 not.")
    common.add_common(p)
    p.add_argument("--socket", metavar="PATH", help="plugin socket (default: from kuryr.conf)")
    p.set_defaults(func=run)


def activate(socket_path: str, timeout: float = ACTIVATE_TIMEOUT) -> str | None:
    """None if the plugin answers as a network driver; else what is wrong."""
    conn = _UnixConnection(socket_path, timeout)
    try:
        conn.request("POST", "/Plugin.Activate", body=b"{}",
                     headers={"Content-Type": "application/vnd.docker.plugins.v1.2+json"})
        reply = conn.getresponse()
        body = reply.read()
    except OSError as exc:
        return f"{socket_path}: {exc}"
    finally:
        conn.close()
    if reply.status != 200:
        return f"{socket_path}: Plugin.Activate answered HTTP {reply.status}"
    try:
        implements = json.loads(body).get("Implements", [])
    except (ValueError, AttributeError):
        return f"{socket_path}: Plugin.Activate answered {body[:100]!r}"
    if "NetworkDriver" not in implements:
        return f"{socket_path}: implements {implements}, not NetworkDriver"
    return None


def run(args: argparse.Namespace) -> int:
    common.setup_logging(args)
    socket_path = args.socket
    if not socket_path:
        conf = common.load_config(args)
        socket_path = os.path.join(conf.courier.plugin_dir, conf.courier.driver_name + ".sock")
    problem = activate(socket_path)
    if args.json:
        common.print_json({"ok": problem is None, "socket": socket_path, "problem": problem})
    else:
        print(problem or f"ok: {socket_path} answers Plugin.Activate")
    return common.OK if problem is None else common.FINDINGS
