"""The one exception -> Docker reply mapping."""

from __future__ import annotations

import json
import logging

import pydantic
import pytest

from courier import exceptions as exc
from courier.api import errors
from courier.api import models as m
from courier.binding.errors import BindingError, PortNotBound


@pytest.mark.parametrize(("error", "status"), [
    (exc.InvalidRequest("bad cidr"), 400),
    (exc.NotFound("no such pool"), 400),  # not 404: Docker would take the method for unimplemented
    (exc.Conflict("taken"), 409),
    (exc.AddressInUse("10.0.0.2 in use"), 409),
    (exc.PoolExhausted("no more addresses"), 409),
    (exc.NeutronUnavailable("Neutron is unreachable"), 503),
    (exc.NeutronError("odd"), 502),
    (exc.CourierError("generic"), 500),
    (errors.BadRequest("bad"), 400),
    (errors.UnknownMethod("unknown method 'X'"), 404),
    (errors.PayloadTooLarge("too big"), 413),
])
def test_domain_errors_keep_their_status_and_message(error: Exception, status: int) -> None:
    got, reply = errors.error_reply(error, "IpamDriver.RequestAddress")
    assert got == status
    assert reply == {"Err": str(error), "Error": str(error)}


def test_not_found_is_never_404() -> None:
    assert errors.error_reply(exc.NotFound("x"), "NetworkDriver.Join")[0] != 404


def test_error_without_message_is_named_by_its_class() -> None:
    assert errors.error_reply(exc.PoolExhausted(), "IpamDriver.RequestAddress") == (
        409, {"Err": "PoolExhausted", "Error": "PoolExhausted"})


def test_validation_error_names_every_field() -> None:
    with pytest.raises(pydantic.ValidationError) as err:
        m.CreateNetworkRequest.model_validate({"NetworkID": 5, "IPv4Data": [{"Gateway": "10.0.0.1/24"}]})
    status, reply = errors.error_reply(err.value, "NetworkDriver.CreateNetwork")
    assert status == 400
    message = reply["Err"]
    assert message.startswith("invalid request: ")
    assert "NetworkID: Input should be a valid string" in message
    assert "IPv4Data.0.Pool: Field required" in message


def test_json_error() -> None:
    try:
        json.loads("{")
    except json.JSONDecodeError as e:
        status, reply = errors.error_reply(e, "NetworkDriver.CreateNetwork")
    assert status == 400
    assert reply["Err"].startswith("invalid request: body is not JSON")


def test_unexpected_error_is_short_and_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise KeyError("password=hunter2")
    except KeyError as e:
        with caplog.at_level(logging.INFO, logger="courier.api.errors"):
            status, reply = errors.error_reply(e, "NetworkDriver.Join")
    assert status == 500
    assert reply["Err"] == reply["Error"] == "internal error in NetworkDriver.Join: KeyError; see the Courier log"
    assert "hunter2" not in reply["Err"]
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_rejections_are_logged_below_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="courier.api.errors"):
        errors.error_reply(exc.InvalidRequest("bad cidr"), "IpamDriver.RequestPool")
        errors.error_reply(exc.NeutronUnavailable("down"), "IpamDriver.RequestPool")
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels["IpamDriver.RequestPool rejected: bad cidr"] == logging.INFO
    assert levels["IpamDriver.RequestPool: down"] == logging.ERROR


def test_binding_error_message_reaches_docker() -> None:
    error = PortNotBound("Neutron port p1 is not bound (binding:vif_type=binding_failed): set [binding] host_id")
    status, reply = errors.error_reply(error, "NetworkDriver.Join")
    assert status == 500
    assert "set [binding] host_id" in reply["Err"]


def test_binding_error_still_gets_a_well_formed_reply() -> None:
    status, reply = errors.error_reply(BindingError("veth creation failed"), "NetworkDriver.Join")
    assert status == 500
    assert set(reply) == {"Err", "Error"}
