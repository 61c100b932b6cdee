"""Any other vif_type: run ``<bindir>/<vif_type>`` like kuryr-lib does, so its libexec scripts keep working.

The argv contract is kuryr-lib's (kuryr/lib/binding/drivers/veth.py), argument order included, which differs
between the two subcommands:

    <bindir>/<vif_type> bind   <port_id> <ifname> <endpoint_id> <mac> <network_id> <project_id> <details>
    <bindir>/<vif_type> unbind <port_id> <ifname> <endpoint_id> <mac> <details> <network_id>

``details`` is ``'"' + str(vif_details) + '"'`` (a Python dict repr in double quotes; kuryr's ovs script greps
it for ``'ovs_hybrid_plug': True``), or ``None`` when there are none (kuryr-lib's ``string_mappings`` then
returns None, which processutils turns into the string).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from courier.binding.base import PlugDriver
from courier.binding.errors import BindingError
from courier.binding.vif import VIF

LOG = logging.getLogger(__name__)

STDERR_TAIL = 2000  # characters of the script's stderr kept in the error message


def executable_path(bindir: str, vif_type: str) -> str | None:
    """``<bindir>/<vif_type>`` if it is an executable file (vif_type may not smuggle in a path)."""
    if not vif_type or "/" in vif_type or vif_type in (".", ".."):
        return None
    path = os.path.join(bindir, vif_type)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def details_arg(details: Mapping[str, Any]) -> str:
    """kuryr-lib's ``string_mappings`` as scripts see it: the dict's repr in double quotes, or 'None'."""
    return '"' + str(_plain(details)) + '"' if details else "None"


def _plain(value: Any) -> Any:
    # A Mapping that is not a dict (e.g. MappingProxyType) would not print like the dict kuryr passed.
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def bind_argv(path: str, vif: VIF) -> list[str]:
    return [path, "bind", vif.port_id, vif.host_ifname, vif.endpoint_id, vif.mac_address, vif.network_id,
            vif.project_id, details_arg(vif.vif_details)]


def unbind_argv(path: str, vif: VIF) -> list[str]:
    return [path, "unbind", vif.port_id, vif.host_ifname, vif.endpoint_id, vif.mac_address,
            details_arg(vif.vif_details), vif.network_id]


class ExecutablePlug(PlugDriver):
    """Not an entry point: the fallback for vif_types that have an executable in ``bindir``."""

    vif_types = ()
    CONFIG_OPTS = (
        cfg.FloatOpt("plug_script_timeout", default=30.0, help="Seconds a <bindir>/<vif_type> executable may run."),
    )

    def plug(self, vif: VIF) -> None:
        path = executable_path(self.conf.bindir, vif.vif_type)
        if path is None:
            raise BindingError(f"No executable {self.conf.bindir}/{vif.vif_type} to plug Neutron "
                               f"port {vif.port_id} (vif_type {vif.vif_type})")
        self._run(bind_argv(path, vif), vif)

    def unplug(self, vif: VIF) -> None:
        path = executable_path(self.conf.bindir, vif.vif_type)
        if path is None:
            LOG.info("No %s/%s to unplug port %s; nothing to run", self.conf.bindir, vif.vif_type,
                     vif.port_id)
            return
        self._run(unbind_argv(path, vif), vif)

    def _run(self, argv: list[str], vif: VIF) -> None:
        timeout = self.conf.courier.plug_script_timeout
        command = " ".join(argv[:2])
        try:
            # Own session, so a timeout kills the script's children too (they would keep its pipes open).
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
        except OSError as exc:
            raise BindingError(f"Cannot run '{command}' for Neutron port {vif.port_id}: {exc}") from exc
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise BindingError(f"'{command}' for Neutron port {vif.port_id} did not finish within "
                               f"{timeout:g} s and was killed; stderr: {_tail(stderr)}") from None
        LOG.debug("'%s' for port %s: stdout %r, stderr %r", command, vif.port_id, stdout, stderr)
        if proc.returncode != 0:
            raise BindingError(f"'{command}' for Neutron port {vif.port_id} exited with status "
                               f"{proc.returncode}; stderr: {_tail(stderr)}")


def _tail(text: str) -> str:
    text = (text or "").strip()
    return ("..." + text[-STDERR_TAIL:]) if len(text) > STDERR_TAIL else (text or "(empty)")
