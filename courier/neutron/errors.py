"""Translate openstacksdk/keystoneauth failures into Courier's domain errors, with Neutron's own reason."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from courier.exceptions import (
    AddressInUse,
    Conflict,
    CourierError,
    InvalidRequest,
    NeutronError,
    NeutronTimeout,
    NeutronUnavailable,
    NotFound,
    PoolExhausted,
)

_BY_TYPE: dict[str, type[CourierError]] = {
    "IpAddressAlreadyAllocated": AddressInUse,
    "IpAddressInUse": AddressInUse,
    "MacAddressInUse": AddressInUse,
    "IpAddressGenerationFailure": PoolExhausted,
    "SubnetAllocationError": PoolExhausted,
    "InvalidIpForSubnet": InvalidRequest,
    "InvalidIpForNetwork": InvalidRequest,
    "InvalidInput": InvalidRequest,
    "SubnetPoolInUse": Conflict,
    "NetworkInUse": Conflict,
    "SubnetInUse": Conflict,
}


class NeutronCallFailed(CourierError):
    """Carries Neutron's error type so callers can react to a specific one (e.g. an address already taken)."""


def neutron_error_type(exc: sdk_exc.HttpException) -> str:
    response = getattr(exc, "response", None)
    with contextlib.suppress(Exception):
        body = response.json() if response is not None else {}
        return str(body.get("NeutronError", {}).get("type", ""))
    return ""


def neutron_message(exc: sdk_exc.HttpException) -> str:
    response = getattr(exc, "response", None)
    with contextlib.suppress(Exception):
        body = response.json() if response is not None else {}
        message = body.get("NeutronError", {}).get("message")
        if message:
            return str(message)
    return str(exc.details or exc.message or exc)


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Run a Neutron call; re-raise failures as domain errors that say what was attempted and why it failed."""
    try:
        yield
    except sdk_exc.HttpException as exc:
        status = exc.status_code or 0
        kind = neutron_error_type(exc)
        message = f"{what}: {neutron_message(exc)}"
        err_cls: type[CourierError]
        if status >= 500 and kind not in _BY_TYPE:
            message = f"{what}: Neutron is unavailable (HTTP {status}): {neutron_message(exc)}"
        if kind in _BY_TYPE:
            err_cls = _BY_TYPE[kind]
        elif status == 404:
            err_cls = NotFound
        elif status == 409:
            err_cls = Conflict
        elif status in (400, 412, 422):
            err_cls = InvalidRequest
        elif status >= 500 or status == 0:
            err_cls = NeutronUnavailable
        else:
            err_cls = NeutronError
        err = err_cls(message)
        err.neutron_type = kind  # type: ignore[attr-defined]
        err.neutron_status = status  # type: ignore[attr-defined]
        raise err from exc
    except (ks_exc.Unauthorized, ks_exc.AuthorizationFailure) as exc:
        raise NeutronError(f"{what}: Keystone refused Courier's credentials ({exc}); check the [neutron] auth "
                           "options in kuryr.conf") from exc
    except ks_exc.ConnectTimeout as exc:
        raise NeutronTimeout(f"{what}: Neutron did not answer in time ([courier] neutron_timeout)") from exc
    except (ks_exc.ConnectionError, ks_exc.RetriableConnectionFailure, ks_exc.DiscoveryFailure,
            sdk_exc.ServiceDiscoveryException) as exc:
        raise NeutronUnavailable(f"{what}: Neutron is unreachable ({type(exc).__name__})") from exc
    except sdk_exc.SDKException as exc:
        raise NeutronError(f"{what}: {exc}") from exc
