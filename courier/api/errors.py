"""The one place that turns any exception into Docker's error reply.

Docker reads ``Err`` for network driver calls and ``Error`` for IPAM calls, and only with a non-2xx status,
so every error carries both keys. No traceback ever leaves the process: unexpected errors are logged here
and answered with a short message.
"""

from __future__ import annotations

import json
import logging

import pydantic

from courier.exceptions import CourierError

LOG = logging.getLogger(__name__)


class BadRequest(CourierError):
    status = 400


class UnknownMethod(CourierError):
    # 404 tells Docker an optional method is not implemented.
    status = 404


class PayloadTooLarge(CourierError):
    status = 413


def describe_validation_error(err: pydantic.ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "invalid request: " + "; ".join(parts)


def error_reply(exc: BaseException, method: str) -> tuple[int, dict[str, str]]:
    if isinstance(exc, pydantic.ValidationError):
        status, message = 400, describe_validation_error(exc)
    elif isinstance(exc, json.JSONDecodeError):
        status, message = 400, f"invalid request: body is not JSON ({exc.msg} at position {exc.pos})"
    elif isinstance(exc, CourierError):
        status, message = exc.status, str(exc) or type(exc).__name__
    else:
        LOG.exception("%s failed unexpectedly", method)
        status, message = 500, f"internal error in {method}: {type(exc).__name__}; see the Courier log"
    if status >= 500:
        LOG.error("%s: %s", method, message)
    else:
        LOG.info("%s rejected: %s", method, message)
    return status, {"Err": message, "Error": message}
