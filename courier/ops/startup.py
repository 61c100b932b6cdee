"""Reconcile once when ``courier serve`` starts: what a crash left behind is removed without waiting for gc.

Only with ``[courier] docker_host`` set: without the Docker daemon's view every port would look unused, and
guessing which daemon(s) this host serves is not safe.
"""

from __future__ import annotations

import logging
import threading

from oslo_config import cfg

from courier.neutron.api import Neutron

LOG = logging.getLogger(__name__)


def reconcile_in_background(conf: cfg.ConfigOpts, neutron: Neutron) -> threading.Thread | None:
    if not conf.courier.docker_host:
        LOG.info("no reconcile at start ([courier] docker_host unset); `courier gc` removes leftovers")
        return None
    thread = threading.Thread(target=reconcile_once, args=(conf, neutron), name="reconcile", daemon=True)
    thread.start()
    return thread


def reconcile_once(conf: cfg.ConfigOpts, neutron: Neutron) -> None:
    from courier.config.options import binding_host_id
    from courier.ops import gc
    from courier.ops.docker import DockerClient, snapshot
    from courier.ops.host import LocalHost

    local = LocalHost(conf)
    try:
        docker = snapshot(DockerClient(conf.courier.docker_host))
        plan, outcomes = gc.reconcile(neutron, docker, local, binding_host_id(conf))
        done = [o for o in outcomes if o.done]
        LOG.info("reconcile at start: %d leftover(s) removed, %d failed, %d kept", len(done),
                 len(outcomes) - len(done), len(plan.kept))
    except Exception as exc:
        LOG.warning("reconcile at start skipped: %s", exc)
    finally:
        local.close()
