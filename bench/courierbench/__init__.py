"""Courier vs kuryr-libnetwork benchmark (bench/run is the entry point; see bench/README.md).

Modules: common (constants, process and Neutron helpers), watch (shared-stack outage watcher), proxy (glue for
bench/neutron_proxy.py), plugins (starting Courier cold/warm and kuryr-libnetwork), dockerd (the private dockerd),
bench (run state, preflight, set-up), workload (docker-CLI workloads), replay (dockerd-call replay workload),
cleanup (leak check and removal), report (table and ratios), cli (flags, main).
"""

import sys
from pathlib import Path

# bench/ shares the tests' helpers (tests/testkit.py, tests/dockerd_replay.py): the repository root on sys.path,
# before any of the modules imports them
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
