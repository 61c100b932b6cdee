"""The one place that turns an exception into a CNI error object (and the HTTP status the executable reads)."""

from __future__ import annotations

import logging

import pydantic

from courier.binding.errors import BindingError
from courier.cni import spec
from courier.exceptions import AddressInUse, CourierError, InvalidRequest, NeutronUnavailable, NotFound, PoolExhausted

LOG = logging.getLogger(__name__)


class CniFailure(CourierError):
    """A failure with its CNI code decided where it happened (e.g. a config without a Neutron network)."""

    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.details = code, details


# Courier's errors in CNI's terms; the first match wins (subclasses before their bases)
_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (AddressInUse, spec.ADDRESS_IN_USE),
    (PoolExhausted, spec.NO_ADDRESS_LEFT),
    (InvalidRequest, spec.INVALID_CONFIG),
    (NeutronUnavailable, spec.TRY_AGAIN_LATER),
    (BindingError, spec.BINDING_FAILED),
    (CourierError, spec.NEUTRON_FAILED),
)


def error_object(exc: BaseException, command: str, version: str) -> tuple[int, dict[str, object]]:
    mapped = next((c for kind, c in _CODES if isinstance(exc, kind)), None)
    if isinstance(exc, CniFailure):
        code, msg, details = exc.code, str(exc), exc.details
    elif isinstance(exc, pydantic.ValidationError):
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                            for e in exc.errors(include_url=False, include_input=False))
        code, msg = spec.INVALID_CONFIG, "invalid network configuration"
    elif isinstance(exc, NotFound):
        code = spec.UNKNOWN_CONTAINER if command == "CHECK" else spec.INVALID_CONFIG
        msg, details = str(exc), ""
    elif mapped is not None:
        code, msg, details = mapped, str(exc), ""
    else:
        LOG.exception("CNI %s failed unexpectedly", command)
        code, msg, details = spec.INTERNAL, f"internal error in {command}: {type(exc).__name__}", "see the Courier log"
    (LOG.error if code in (spec.INTERNAL, spec.BINDING_FAILED, spec.NEUTRON_FAILED) else LOG.info)(
        "CNI %s failed (%d): %s", command, code, msg)
    status = 400 if code < 100 or code in (spec.ADDRESS_IN_USE, spec.NO_ADDRESS_LEFT) else 500
    return status, spec.error(code, msg, details, version)
