"""Glue for the counting Neutron proxy (bench/neutron_proxy.py, kept standalone and stdlib-only)."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import BENCH_DIR, NEUTRON_URL

if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
from neutron_proxy import Call, CountingProxy, pattern

__all__ = ["Call", "CountingProxy", "calls_in", "outage_calls", "pattern", "start_proxy"]


def start_proxy(log_dir: Path, key: str) -> CountingProxy:
    """One proxy per plugin: 127.0.0.1:ephemeral -> Neutron, every request logged to neutron-calls-KEY.jsonl."""
    return CountingProxy(NEUTRON_URL, log_path=str(log_dir / f"neutron-calls-{key}.jsonl")).start()


def calls_in(proxy: CountingProxy, *phases: str) -> list[Call]:
    return [c for ph in phases for c in proxy.calls_in(ph)]


def outage_calls(proxy: CountingProxy, phase: str) -> list[Call]:
    """Calls of this phase that Neutron refused (502 from the proxy: connection refused/reset)."""
    return [c for c in proxy.calls_in(phase) if c.status == 502]
