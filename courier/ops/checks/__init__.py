"""The checks ``courier doctor`` runs, in order: later ones use what earlier ones learnt (``Context``)."""

from __future__ import annotations

from courier.ops.checks import config, docker, host, neutron
from courier.ops.checks.base import Check

CHECKS: list[Check] = [config.check_config, neutron.check_neutron, host.check_binding_host, host.check_ovs,
                       docker.check_plugin_paths, neutron.check_subnetpools, docker.check_docker]
