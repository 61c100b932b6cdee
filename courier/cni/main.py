"""``courier-cni``: the CNI plugin executable. Reads the runtime's environment and network config, hands the call
to the Courier daemon over its unix socket and prints the daemon's result or CNI error.

Standard library only and no work of its own: the daemon holds the Neutron session, caches and warm pools.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
from typing import Any, TextIO

from courier.cni import spec

TIMEOUT = 300.0  # the daemon bounds every step (Neutron, binding); this only catches a daemon that hangs


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class Failure(Exception):
    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def run(environ: dict[str, str], stdin: TextIO, stdout: TextIO) -> int:
    command = environ.get("CNI_COMMAND", "")
    version = spec.LATEST
    try:
        if command == "VERSION":
            config = _config(stdin.read(), required=False)
            version = str(config.get("cniVersion") or spec.LATEST)
            json.dump({"cniVersion": version, "supportedVersions": list(spec.SUPPORTED_VERSIONS)}, stdout)
            return 0
        if command not in spec.COMMANDS:
            raise Failure(spec.INVALID_ENVIRONMENT, f"unknown CNI_COMMAND {command!r}",
                          f"one of {', '.join(spec.COMMANDS)}")
        config = _config(stdin.read())
        version = str(config.get("cniVersion") or "")
        if version not in spec.SUPPORTED_VERSIONS:
            raise Failure(spec.INCOMPATIBLE_VERSION, f"CNI version {version!r} is not supported",
                          f"supported: {', '.join(spec.SUPPORTED_VERSIONS)}")
        request = _request(command, environ, config)
        status, answer = _call(str(config.get("daemonSocket") or environ.get("COURIER_CNI_SOCKET")
                                   or spec.DEFAULT_SOCKET), command, request)
    except Failure as failure:
        json.dump(spec.error(failure.code, failure.msg, failure.details, version), stdout)
        return 1
    if status != 200:
        json.dump(answer, stdout)
        return 1
    if answer:  # ADD's result; DEL, CHECK, STATUS and GC print nothing
        json.dump(answer, stdout)
    return 0


def _config(text: str, required: bool = True) -> dict[str, Any]:
    if not text.strip() and not required:
        return {}
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise Failure(spec.DECODE_FAILURE, "the network configuration is not JSON", str(exc)) from None
    if not isinstance(config, dict):
        raise Failure(spec.DECODE_FAILURE, "the network configuration is not a JSON object")
    return config


def _request(command: str, environ: dict[str, str], config: dict[str, Any]) -> dict[str, Any]:
    needed = {"ADD": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS"), "CHECK": ("CNI_CONTAINERID", "CNI_IFNAME",
                                                                              "CNI_NETNS"),
              "DEL": ("CNI_CONTAINERID", "CNI_IFNAME")}.get(command, ())
    missing = [name for name in needed if not environ.get(name)]
    if missing:
        raise Failure(spec.INVALID_ENVIRONMENT, f"{command} needs {', '.join(missing)}")
    return {"containerId": environ.get("CNI_CONTAINERID", ""), "netns": environ.get("CNI_NETNS", ""),
            "ifname": environ.get("CNI_IFNAME", ""), "args": environ.get("CNI_ARGS", ""), "config": config}


def _call(path: str, command: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    conn = _UnixConnection(path, TIMEOUT)
    try:
        conn.request("POST", f"/CNI.{command.capitalize()}", body=json.dumps(request),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        code = spec.NOT_AVAILABLE if command == "STATUS" else spec.TRY_AGAIN_LATER
        raise Failure(code, "the Courier daemon is not running", f"{path}: {exc.strerror}") from None
    except OSError as exc:
        raise Failure(spec.IO_FAILURE, "talking to the Courier daemon failed", f"{path}: {exc}") from None
    finally:
        conn.close()
    try:
        answer = json.loads(body) if body.strip() else {}
    except ValueError:
        raise Failure(spec.IO_FAILURE, "the Courier daemon's answer is not JSON", body[:200].decode(
            errors="replace")) from None
    return response.status, answer


def main() -> None:
    sys.exit(run(dict(os.environ), sys.stdin, sys.stdout))


if __name__ == "__main__":
    main()
