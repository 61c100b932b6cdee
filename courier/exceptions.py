"""Domain errors shared by every layer. ``courier.api.errors`` is the one place that turns them into replies."""

from __future__ import annotations


class CourierError(Exception):
    """Base class; ``status`` is the HTTP status Docker gets."""

    status = 500


class InvalidRequest(CourierError):
    """The request is well-formed JSON but asks for something impossible (bad CIDR, unknown option value...)."""

    status = 400


class NotFound(CourierError):
    # 400, not 404: Docker reads 404 as "method not implemented" and would silently skip the call.
    status = 400


class Conflict(CourierError):
    status = 409


class AddressInUse(Conflict):
    pass


class PoolExhausted(Conflict):
    pass


class NeutronUnavailable(CourierError):
    """Neutron did not answer (connection refused, timeout, 5xx after retries)."""

    status = 503


class NeutronTimeout(NeutronUnavailable):
    """Neutron took longer than ``[courier] neutron_timeout``: not retried, the wait was long enough already."""


class NeutronError(CourierError):
    """Neutron answered with an error Courier has no better name for."""

    status = 502
