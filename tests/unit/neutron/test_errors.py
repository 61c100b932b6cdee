import pytest
import requests
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from courier.exceptions import AddressInUse, InvalidRequest, NeutronUnavailable, NotFound, PoolExhausted
from courier.neutron.errors import translated


def _http_error(status: int, kind: str, message: str) -> sdk_exc.HttpException:
    response = requests.Response()
    response.status_code = status
    response._content = f'{{"NeutronError": {{"type": "{kind}", "message": "{message}", "detail": ""}}}}'.encode()
    response.headers["Content-Type"] = "application/json"
    return sdk_exc.HttpException(message=message, response=response)


@pytest.mark.parametrize(("status", "kind", "expected"), [
    (409, "IpAddressAlreadyAllocated", AddressInUse),
    (409, "IpAddressGenerationFailure", PoolExhausted),
    (400, "InvalidIpForSubnet", InvalidRequest),
    (404, "PortNotFound", NotFound),
    (503, "", NeutronUnavailable),
])
def test_neutron_errors_become_domain_errors_with_neutron_reason(status: int, kind: str, expected: type) -> None:
    with pytest.raises(expected) as caught, translated("creating a port"):
        raise _http_error(status, kind, "the reason Neutron gave")
    assert str(caught.value).startswith("creating a port: ")
    assert str(caught.value).endswith("the reason Neutron gave")
    if status >= 500:  # says plainly that Neutron, not the request, is the problem
        assert "Neutron is unavailable (HTTP 503)" in str(caught.value)
    assert caught.value.neutron_type == kind  # type: ignore[attr-defined]


def test_connection_failure_is_unavailable() -> None:
    with pytest.raises(NeutronUnavailable, match="listing ports: Neutron is unreachable"), translated("listing ports"):
        raise ks_exc.ConnectFailure("refused")
