"""The binding facade the driver calls on Join and Leave: link driver + plug driver + readiness wait."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from oslo_config import cfg

from courier.binding import registry
from courier.binding.base import LinkDriver, PlugDriver
from courier.binding.errors import BindingError, PortNotBound, UnsupportedVifType
from courier.binding.plugs.executable import ExecutablePlug, executable_path
from courier.binding.vif import VIF
from courier.config.options import binding_host_id, link_driver_name, port_ready_timeout

LOG = logging.getLogger(__name__)

NOT_BOUND = ("unbound", "binding_failed", "")
# Unplugged on unbind when the port no longer says how it was plugged (e.g. its binding was cleared).
FALLBACK_UNPLUG = "ovs"


@dataclasses.dataclass
class _Step:
    """What a bind is doing now, for the error message if it fails."""

    doing: str


Undo = tuple[str, Callable[[VIF], None]]  # (what, action), logged as "could not <what>" when it fails


class Binder:
    """Created once per process; drivers (and the OVSDB connection) are set up on first use. Thread-safe."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self._conf = conf
        self._link = _load_link(conf)
        self._plugs: dict[str, PlugDriver] = {}
        self._lock = threading.Lock()

    def bind(self, vif: VIF) -> str:
        """Create the interface, plug it and wait until it forwards; return the name Docker moves (SrcName).

        On failure nothing is left behind and a BindingError (PortNotBound, UnsupportedVifType, PortNotReady,
        ...) says what went wrong.
        """
        if not self._link.plugs:
            return self._create_only(vif)
        plug = self._plug_for(vif)  # before touching anything: unsupported ports fail cleanly
        timeout = port_ready_timeout(self._conf)
        started = time.monotonic()
        undo = [("unplug", plug.unplug), ("delete the interface", self._link.delete)]
        step = _Step(f"create veth pair {vif.host_ifname}/{vif.container_ifname}")
        with self._undone_on_failure(vif, undo, step):
            src_name = self._link.create(vif)
            step.doing = f"plug {vif.host_ifname} (vif_type {vif.vif_type})"
            if timeout > 0:
                with plug.watch_ready(vif) as wait_ready:
                    plug.plug(vif)
                    step.doing = f"wait for port {vif.port_id} to forward traffic"
                    wait_ready(timeout)
            else:
                plug.plug(vif)
        self._announce(plug, vif)
        LOG.info("Bound port %s (vif_type %s) to %s in %.3f s", vif.port_id, vif.vif_type, vif.host_ifname,
                 time.monotonic() - started)
        return src_name

    def unbind(self, vif: VIF) -> None:
        """Unplug and delete the interface; idempotent, and goes on past missing pieces and failing steps."""
        problems = []
        plug, best_effort = self._plug_for_unbind(vif) if self._link.plugs else (None, True)
        if plug is not None:
            try:
                plug.unplug(vif)
            except Exception as exc:
                if best_effort:
                    LOG.debug("Best-effort unplug of port %s failed: %s", vif.port_id, exc)
                else:
                    problems.append(str(exc))
        try:
            self._link.delete(vif)
        except Exception as exc:
            problems.append(str(exc))
        if problems:
            raise BindingError(f"Unbinding Neutron port {vif.port_id} (endpoint {vif.endpoint_id}) left "
                               "things behind: " + "; ".join(problems))
        LOG.info("Unbound port %s from %s", vif.port_id, vif.host_ifname)

    def unbind_endpoint(self, endpoint_id: str) -> None:
        """Clear what an endpoint left on this host when Neutron no longer knows its port (found via OVSDB)."""
        if not self._link.plugs:
            return  # nested: no OVS in the VM, and the device (named after the unknown port) went with the sandbox
        plug = self._plug(FALLBACK_UNPLUG)  # without the port, its vif_type is unknown: OVS is the one to ask
        names = plug.remove_orphans(endpoint_id) if plug is not None else []
        if names:
            LOG.info("Removed %s left by endpoint %s", ", ".join(names), endpoint_id)

    def announce(self, vif: VIF) -> None:
        """Before a container gets a plugged interface: its addresses are announced at its MAC (gratuitous ARP,
        unsolicited NA), so that no neighbour answers its first packets to a previous holder's MAC."""
        plug = self._plug(vif.vif_type) if self._link.plugs else None
        if plug is not None:
            self._announce(plug, vif)

    @staticmethod
    def _announce(plug: PlugDriver, vif: VIF) -> None:
        try:
            plug.announce(vif)
        except Exception as exc:  # the port forwards: at worst a stale neighbour entry delays its first packets
            LOG.warning("Could not announce the addresses of port %s: %s", vif.port_id, exc)

    # --- the warm pool's view: what is plugged, for whom --------------------------------------------------------

    def label(self, vif: VIF, owner: str) -> None:
        plug = self._plug(vif.vif_type) if self._link.plugs else None
        if plug is not None:
            plug.label(vif, owner)

    def plugged_for(self, vif: VIF) -> str | None:
        """The label of ``vif`` when its interface is on the host and plugged (ready for a container); else None."""
        plug = self._plug(vif.vif_type) if self._link.plugs else None
        if plug is None or not self._link.present(vif):
            return None
        return plug.owner_of(vif)

    def recorded_owner(self, vif: VIF) -> str | None:
        """Whom the host says ``vif`` serves, also while its container end is in a container (``plugged_for``
        is None then)."""
        plug = self._plug(vif.vif_type) if self._link.plugs else None
        return plug.recorded_owner(vif) if plug is not None else None

    def reset(self, vif: VIF) -> None:
        self._link.reset(vif)

    def port_of_endpoint(self, endpoint_id: str) -> str | None:
        plug = self._plug(FALLBACK_UNPLUG) if self._link.plugs else None
        return plug.port_of_endpoint(endpoint_id) if plug is not None else None

    @property
    def prepluggable(self) -> bool:
        """Whether interfaces can be made and plugged before a container asks (veth + a plug driver)."""
        return self._link.plugs

    def _create_only(self, vif: VIF) -> str:
        """Nested link drivers: the device is the whole binding (the VM's port carries the traffic)."""
        undo = [("delete the interface", self._link.delete)]
        with self._undone_on_failure(vif, undo, _Step(f"create its {self._link.name} device")):
            src_name = self._link.create(vif)
        LOG.info("Created %s device %s for port %s", self._link.name, src_name, vif.port_id)
        return src_name

    def close(self) -> None:
        with self._lock:
            plugs, self._plugs = list(self._plugs.values()), {}
        drivers: list[LinkDriver | PlugDriver] = [*plugs, self._link]
        for driver in drivers:
            try:
                driver.close()
            except Exception:
                LOG.exception("Closing binding driver %s failed", type(driver).__name__)

    @staticmethod
    @contextlib.contextmanager
    def _undone_on_failure(vif: VIF, undo: Sequence[Undo], step: _Step) -> Iterator[None]:
        """On any failure inside: run every ``undo`` action (a failing one is logged, not raised), then re-raise
        BindingErrors (and KeyboardInterrupt...) as they are and wrap anything else, naming the failed step."""
        try:
            yield
        except BaseException as exc:
            for what, action in undo:
                try:
                    action(vif)
                except Exception:
                    LOG.exception("Cleaning up after the failed bind of port %s: could not %s", vif.port_id, what)
            if isinstance(exc, BindingError) or not isinstance(exc, Exception):
                raise
            raise BindingError(f"Binding Neutron port {vif.port_id} (endpoint {vif.endpoint_id}) failed to "
                               f"{step.doing}: {exc}") from exc

    def _plug_for(self, vif: VIF) -> PlugDriver:
        if vif.vif_type in NOT_BOUND:
            raise PortNotBound(
                f"Neutron port {vif.port_id} is not bound (binding:vif_type={vif.vif_type or 'unset'}): no "
                f"mechanism driver bound it to host '{binding_host_id(self._conf)}'. That binding host id "
                "probably isn't a Neutron/OVN chassis; for ML2/OVN it must equal the system-id of this "
                "host's ovn-controller (external_ids:system-id in Open_vSwitch). Set [binding] host_id if it "
                "differs from the hostname.")
        plug = self._plug(vif.vif_type)
        if plug is None:
            bindir = self._conf.bindir
            builtin = ", ".join(sorted(registry.entry_points(registry.PLUG_GROUP)))
            raise UnsupportedVifType(
                f"Neutron port {vif.port_id} has binding:vif_type={vif.vif_type}, which Courier cannot plug: "
                f"there is no plug driver for it (available: {builtin}) and no executable "
                f"{bindir}/{vif.vif_type}.")
        return plug

    def _plug_for_unbind(self, vif: VIF) -> tuple[PlugDriver | None, bool]:
        """The plug driver to undo, and whether it is only a guess (its failures are then ignored)."""
        plug = None if vif.vif_type in NOT_BOUND else self._plug(vif.vif_type)
        if plug is not None:
            return plug, False
        return self._plug(FALLBACK_UNPLUG), True

    def _plug(self, vif_type: str) -> PlugDriver | None:
        with self._lock:
            if vif_type in self._plugs:
                return self._plugs[vif_type]
            driver_class = registry.load(registry.PLUG_GROUP, vif_type)
            if driver_class is None:
                if executable_path(self._conf.bindir, vif_type) is None:
                    return None
                driver_class = ExecutablePlug
            if not issubclass(driver_class, PlugDriver):
                raise BindingError(f"Plug driver {driver_class.__name__} for vif_type {vif_type} is not a "
                                   "PlugDriver")
            self._plugs[vif_type] = driver_class(self._conf)
            return self._plugs[vif_type]


def _load_link(conf: cfg.ConfigOpts) -> LinkDriver:
    name = link_driver_name(conf)
    driver_class = registry.load(registry.LINK_GROUP, name)
    if driver_class is None or not issubclass(driver_class, LinkDriver):
        available = ", ".join(sorted(registry.entry_points(registry.LINK_GROUP)))
        raise BindingError(f"[binding] driver = {conf.binding.driver}: Courier has no link driver '{name}' "
                           f"(available: {available})")
    return driver_class(conf)
