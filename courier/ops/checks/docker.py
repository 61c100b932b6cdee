"""doctor: where Docker looks for plugins, whether Courier answers there, and the Docker daemon itself."""

from __future__ import annotations

import os
from collections.abc import Iterator

from courier.ops.checks.base import ERROR, OK, SKIPPED, WARNING, Context, Finding
from courier.ops.docker import DockerClient, DockerError

DISCOVERY_DIRS = ("/run/docker/plugins", "/etc/docker/plugins", "/usr/lib/docker/plugins")
SOCKET_DISCOVERY_DIRS = ("/run/docker/plugins", "/var/run/docker/plugins")


def check_plugin_paths(ctx: Context) -> Iterator[Finding]:
    if ctx.conf is None:
        yield Finding("plugin", SKIPPED, "configuration unusable")
        return
    name, plugin_dir = ctx.conf.courier.driver_name, ctx.conf.courier.plugin_dir
    sock = os.path.join(plugin_dir, name + ".sock")
    present = [d for d in DISCOVERY_DIRS if os.path.isdir(d)]
    yield Finding("discovery", OK, "Docker plugin discovery paths present: " + (", ".join(present) or "none")
                  + (f"; absent: {', '.join(d for d in DISCOVERY_DIRS if d not in present)}"
                     if len(present) < len(DISCOVERY_DIRS) else ""))
    specs = [os.path.join(d, name + ext) for d in DISCOVERY_DIRS[1:] for ext in (".spec", ".json")]
    specs = [s for s in specs if os.path.exists(s)]
    if ctx.conf.kuryr_uri:
        if specs:
            yield Finding("plugin", OK, f"Docker finds driver {name!r} through {specs[0]}")
        else:
            yield Finding("plugin", ERROR, f"[DEFAULT] kuryr_uri = {ctx.conf.kuryr_uri} but Docker has no "
                          f"{name}.spec or {name}.json in /etc/docker/plugins or /usr/lib/docker/plugins",
                          f"install deploy/docker-plugins/kuryr.spec as /etc/docker/plugins/{name}.spec "
                          f"(its one line: {ctx.conf.kuryr_uri})")
    if os.path.realpath(plugin_dir) not in {os.path.realpath(d) for d in SOCKET_DISCOVERY_DIRS}:
        yield Finding("plugin", WARNING, f"[courier] plugin_dir = {plugin_dir}: Docker looks for plugin sockets "
                      "only in /run/docker/plugins", "leave plugin_dir at its default unless a spec file "
                      f"points Docker at {sock}")
    if not os.path.isdir(plugin_dir):
        yield Finding("plugin", WARNING, f"socket directory {plugin_dir} does not exist yet",
                      f"courier serve creates it; or mkdir -p {plugin_dir}")
        return
    if os.path.exists(sock):
        answer = _activate(sock)
        if answer:
            yield Finding("plugin", OK, f"Courier answers on {sock}")
        else:
            yield Finding("plugin", WARNING, f"{sock} exists but nothing answers on it (left by a stopped "
                          "process?)", "start courier serve (it replaces a stale socket)")
    else:
        yield Finding("plugin", OK, f"socket directory {plugin_dir} exists; no Courier listens on {sock} yet")
    for spec in specs:
        if not ctx.conf.kuryr_uri and os.path.exists(sock):
            yield Finding("plugin", WARNING, f"{spec} also declares driver {name!r}; Docker uses the socket "
                          f"{sock} first", f"remove {spec} if it is left over from a TCP setup")


def _activate(sock: str) -> bool:
    from courier.ops.docker import _UnixConnection

    conn = _UnixConnection(sock, 3.0)
    try:
        conn.request("POST", "/Plugin.Activate", body=b"{}")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def check_docker(ctx: Context) -> Iterator[Finding]:
    client = DockerClient(ctx.args.docker_host)
    try:
        version = client.version()
    except DockerError as exc:
        yield Finding("docker", WARNING, str(exc), "pass --docker-host or set DOCKER_HOST to check the daemon too")
        return
    yield Finding("docker", OK, f"Docker {version.get('Version', '?')} (API {version.get('ApiVersion', '?')}) "
                  f"answers at {client.host}")
