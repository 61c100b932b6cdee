#!/usr/bin/env python3
"""A fake CNI plugin for tests: it records every call and creates nothing on the host.

Each call appends one JSON line to ``<logDir>/calls.jsonl`` (``logDir`` from the plugin's entry in the
conflist, else ``$FAKE_CNI_LOG_DIR``): the CNI_* environment, the parsed stdin, and whether the netns path
existed at that moment.  Behaviour, set by keys of the plugin's entry in the conflist:

- ``result``: extra result fields for ADD (e.g. ``{"ips": [{"address": "10.99.0.5/24"}]}``); the plugin adds
  ``cniVersion`` (the conflist's) and, for 0.3.x/0.4.0, each IP's ``"version"``;
- ``loopback``: true to set ``lo`` up inside the container netns (via nsenter; nothing on the host);
- ``fail``: {"ADD": "message", ...}: answer that command with a CNI error (code 999).

ADD echoes ``prevResult`` when chained; DEL, CHECK and GC succeed with no output; VERSION lists 0.1.0..1.1.0.
"""
import ipaddress
import json
import os
import subprocess
import sys
import time

SUPPORTED = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def log_call(conf, stdin_raw):
    log_dir = conf.get("logDir") or os.environ.get("FAKE_CNI_LOG_DIR")
    if not log_dir:
        return
    netns = os.environ.get("CNI_NETNS", "")
    record = {
        "time": time.time(),
        "pid": os.getpid(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("CNI_")},
        "netns_exists": bool(netns) and os.path.exists(netns),
        "stdin": conf if conf else stdin_raw,
    }
    os.makedirs(log_dir, exist_ok=True)
    with open(os.path.join(log_dir, "calls.jsonl"), "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def error(code, msg, version="1.0.0"):
    json.dump({"cniVersion": version, "code": code, "msg": msg}, sys.stdout)
    sys.exit(1)


def main():
    stdin_raw = sys.stdin.read()
    try:
        conf = json.loads(stdin_raw) if stdin_raw.strip() else {}
    except ValueError:
        conf = {}
    command = os.environ.get("CNI_COMMAND", "")
    log_call(conf, stdin_raw)
    version = conf.get("cniVersion", "1.0.0")
    if command == "VERSION":
        json.dump({"cniVersion": version if version in SUPPORTED else "1.0.0",
                   "supportedVersions": SUPPORTED}, sys.stdout)
        return
    failure = (conf.get("fail") or {}).get(command)
    if failure:
        error(999, failure, version)
    if command != "ADD":
        return  # DEL, CHECK, GC, STATUS: success, no output
    netns = os.environ.get("CNI_NETNS", "")
    if conf.get("loopback") and netns:
        subprocess.run(["nsenter", f"--net={netns}", "ip", "link", "set", "lo", "up"], check=True)
    result = dict(conf.get("prevResult") or {})
    result.update(conf.get("result") or {})
    result["cniVersion"] = version
    if version.startswith(("0.3.", "0.4.")):
        for ip in result.get("ips", []):
            ip.setdefault("version", str(ipaddress.ip_interface(ip["address"]).version))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
