"""The two binding driver interfaces (cf. os-vif's PluginBase: describe, plug, unplug)."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from typing import ClassVar

from oslo_config import cfg

from courier.binding.vif import VIF

# Blocks until the port forwards traffic; raises PortNotReady after the given number of seconds.
WaitReady = Callable[[float], None]


def _ready_at_once(timeout: float) -> None:
    """For backends that forward as soon as they are plugged."""


class LinkDriver(abc.ABC):
    """Makes the container's interface in the host namespace, ready for Docker to move into the sandbox."""

    name: ClassVar[str]
    # False for nested drivers (vlan/macvlan/ipvlan): the device is all there is, no plug driver is involved.
    plugs: ClassVar[bool] = True

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    @abc.abstractmethod
    def create(self, vif: VIF) -> str:
        """Create the interface for ``vif``; return the name Docker must move (Join's ``SrcName``).

        Idempotent.
        """

    @abc.abstractmethod
    def delete(self, vif: VIF) -> None:
        """Remove what ``create`` made; no error if it is already (partly) gone."""

    def present(self, vif: VIF) -> bool:
        """Whether what ``create`` made is on the host, unused (e.g. back from a sandbox). Default: unknown."""
        return False

    def reset(self, vif: VIF) -> None:  # noqa: B027 - optional hook, default no-op
        """Make a ``present`` interface as ``create`` left it, for the next container (the warm pool)."""

    def close(self) -> None:  # noqa: B027 - optional hook, default no-op
        """Release what the driver holds (connections, threads)."""


class PlugDriver(abc.ABC):
    """Attaches the host end of a veth to the backend Neutron bound the port to.

    Like an os-vif plugin, a driver declares its own options (``CONFIG_OPTS`` in ``CONFIG_GROUP``); they are
    registered when the driver is created, so a driver from another package needs no change to Courier's config.
    """

    vif_types: ClassVar[tuple[str, ...]]
    CONFIG_GROUP: ClassVar[str] = "courier"
    CONFIG_OPTS: ClassVar[tuple[cfg.Opt, ...]] = ()

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.register_opts(conf)
        self.conf = conf

    @classmethod
    def register_opts(cls, conf: cfg.ConfigOpts) -> None:
        """Idempotent: oslo.config accepts the same option registered again."""
        conf.register_opts(list(cls.CONFIG_OPTS), group=cls.CONFIG_GROUP)

    @abc.abstractmethod
    def plug(self, vif: VIF) -> None:
        """Connect ``vif.host_ifname`` to the backend. Idempotent."""

    @abc.abstractmethod
    def unplug(self, vif: VIF) -> None:
        """Disconnect; no error if already gone."""

    def label(self, vif: VIF, owner: str) -> None:  # noqa: B027 - optional hook, default no-op
        """Record on the host which endpoint (or pool state) ``vif`` serves, so a restarted Courier knows."""

    def announce(self, vif: VIF) -> None:  # noqa: B027 - optional hook, default no-op
        """Tell the network that ``vif``'s addresses are at its MAC now (gratuitous ARP, unsolicited NA), as if
        the container sent it: neighbours drop what they cached for a previous holder of the addresses."""

    def owner_of(self, vif: VIF) -> str | None:
        """What ``label`` recorded for ``vif``; None when the plug is not there (or keeps no label)."""
        return None

    def recorded_owner(self, vif: VIF) -> str | None:
        """What ``label`` recorded for ``vif``, whatever state its interface is in (e.g. moved into a container);
        None when nothing is recorded."""
        return None

    def port_of_endpoint(self, endpoint_id: str) -> str | None:
        """The Neutron port id plugged for ``endpoint_id``, found on the host; None if unknown."""
        return None

    def remove_orphans(self, endpoint_id: str) -> list[str]:
        """Remove what this driver plugged for an endpoint whose Neutron port is gone (so ``unplug`` cannot be
        told the port); return the names removed. Default: the driver leaves nothing findable."""
        return []

    def watch_ready(self, vif: VIF) -> contextlib.AbstractContextManager[WaitReady]:
        """Start watching for ``vif`` to forward traffic; entered *before* ``plug`` so no change is missed.

        The context yields ``wait(timeout)``. Default: ready as soon as plugged.
        """
        return contextlib.nullcontext(_ready_at_once)

    def close(self) -> None:  # noqa: B027 - optional hook, default no-op
        """Release what the driver holds (connections, threads)."""
