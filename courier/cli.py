"""``courier`` command line: serve (the plugin), and operator tools."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socketserver
import sys
import threading

from courier import __version__, logcontext

LOG = logging.getLogger("courier")


def _config_args(args: argparse.Namespace) -> list[str]:
    argv: list[str] = []
    for path in args.config_file or []:
        argv += ["--config-file", path]
    return argv


def _program_name() -> str:
    """``kuryr-server`` when started through that name (Kolla), else ``courier``: oslo.log's log file name."""
    name = os.path.basename(sys.argv[0])
    return "courier" if not name or name.endswith(".py") else name


def cmd_serve(args: argparse.Namespace) -> int:
    from courier import config, metrics, server
    from courier.api.routes import Dispatcher, build_routes
    from courier.binding.manager import Binder
    from courier.config import options
    from courier.driver.plugin import Plugin
    from courier.neutron.api import Neutron
    from courier.neutron.connection import connect

    conf = config.load(_config_args(args))
    debug = args.debug or conf.debug
    logcontext.setup(logging.DEBUG if debug else logging.INFO, stream=sys.stdout,
                     path=options.log_path(conf, _program_name()))
    neutron = Neutron(connect(conf))
    plugin = Plugin(conf, neutron, Binder(conf))
    plugin.start()
    dispatcher = Dispatcher(build_routes(plugin))
    socket_path = os.path.join(conf.courier.plugin_dir, conf.courier.driver_name + ".sock")
    servers: list[socketserver.BaseServer] = [
        server.UnixPluginServer(socket_path, dispatcher, conf.courier.max_request_bytes)]
    if conf.kuryr_uri:
        host, port = server.parse_tcp_uri(conf.kuryr_uri)
        tls = (server.tls_context(conf.ssl_cert_file, conf.ssl_key_file, conf.ssl_ca_file)
               if conf.enable_ssl else None)
        servers.append(server.TCPPluginServer(host, port, dispatcher, conf.courier.max_request_bytes, tls))
        LOG.info("listening on %s%s", conf.kuryr_uri, " (TLS)" if tls else "")
    if conf.cni.enabled:
        from courier.cni.handlers import CniDispatcher

        servers.append(server.UnixPluginServer(conf.cni.socket_path, CniDispatcher(plugin.attachments),
                                               conf.courier.max_request_bytes))
        LOG.info("CNI daemon on %s", conf.cni.socket_path)
    if conf.courier.metrics_listen:
        metrics.serve(conf.courier.metrics_listen)
        LOG.info("metrics on http://%s/metrics", conf.courier.metrics_listen)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    LOG.info("courier %s serving Docker driver %r on %s", __version__, conf.courier.driver_name, socket_path)
    from courier.ops.startup import reconcile_in_background

    reconcile_in_background(conf, neutron)
    try:
        server.serve_forever(servers, stop)
    finally:
        plugin.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="courier", description="Docker networking on OpenStack Neutron.")
    parser.add_argument("--version", action="version", version=f"courier {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the Docker network and IPAM plugin")
    for p in (serve,):
        p.add_argument("--config-file", action="append",
                       help="kuryr.conf to read (repeatable; default /etc/kuryr/kuryr.conf)")
        p.add_argument("--debug", action="store_true", help="log debug messages")
    serve.set_defaults(func=cmd_serve)
    from courier.ops import doctor, gc_cmd, health, status

    for command in (doctor, status, gc_cmd, health):
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(f"courier: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
