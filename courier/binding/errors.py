"""Binding failures, each with a message an operator can act on (Docker shows it as is)."""

from courier.exceptions import CourierError


class BindingError(CourierError):
    """The container interface could not be set up or torn down."""

    status = 500


class UnsupportedVifType(BindingError):
    """No plug driver and no <bindir>/<vif_type> executable handles the port's binding:vif_type."""


class PortNotBound(BindingError):
    """Neutron did not bind the port (vif_type ``unbound`` or ``binding_failed``)."""


class PortNotReady(BindingError):
    """The port did not start forwarding within the configured timeout."""
