"""Docker method name -> typed request model and handler. Nothing else knows the method names."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from courier import logcontext, metrics
from courier.api import handlers
from courier.api import models as m
from courier.api.errors import BadRequest, UnknownMethod, error_reply

if TYPE_CHECKING:
    from courier.driver.plugin import Plugin

LOG = logging.getLogger(__name__)
# dockerd re-sends a call that got no answer (the plugin restarted mid-call) with an empty body: moby/moby#39331.
EMPTY_BODY_HINT = (" (the request body was empty: dockerd sends that when it retries a call whose first attempt "
                   "got no answer, e.g. while the plugin restarted; moby/moby#39331. Run the docker command again)")


@dataclasses.dataclass(frozen=True)
class Route:
    request: type[m.Request]
    handler: Callable[[Any], m.Reply]


def build_routes(plugin: Plugin) -> dict[str, Route]:
    net, ipam = handlers.NetworkDriver(plugin), handlers.IpamDriver(plugin)
    return {
        "Plugin.Activate": Route(m.Empty, handlers.activate),
        "NetworkDriver.GetCapabilities": Route(m.Empty, net.capabilities),
        "NetworkDriver.GwAllocCheck": Route(m.GwAllocCheckRequest, net.gw_alloc_check),
        "NetworkDriver.CreateNetwork": Route(m.CreateNetworkRequest, net.create_network),
        "NetworkDriver.DeleteNetwork": Route(m.NetworkRequest, net.delete_network),
        "NetworkDriver.AllocateNetwork": Route(m.AllocateNetworkRequest, net.allocate_network),
        "NetworkDriver.FreeNetwork": Route(m.NetworkRequest, net.free_network),
        "NetworkDriver.CreateEndpoint": Route(m.CreateEndpointRequest, net.create_endpoint),
        "NetworkDriver.DeleteEndpoint": Route(m.EndpointRequest, net.delete_endpoint),
        "NetworkDriver.EndpointOperInfo": Route(m.EndpointRequest, net.endpoint_oper_info),
        "NetworkDriver.Join": Route(m.JoinRequest, net.join),
        "NetworkDriver.Leave": Route(m.EndpointRequest, net.leave),
        "NetworkDriver.ProgramExternalConnectivity": Route(m.EndpointRequest, net.program_external_connectivity),
        "NetworkDriver.RevokeExternalConnectivity": Route(m.EndpointRequest, net.revoke_external_connectivity),
        "NetworkDriver.DiscoverNew": Route(m.DiscoveryRequest, net.discover),
        "NetworkDriver.DiscoverDelete": Route(m.DiscoveryRequest, net.discover),
        "IpamDriver.GetCapabilities": Route(m.Empty, ipam.capabilities),
        "IpamDriver.GetDefaultAddressSpaces": Route(m.Empty, ipam.default_address_spaces),
        "IpamDriver.RequestPool": Route(m.RequestPoolRequest, ipam.request_pool),
        "IpamDriver.ReleasePool": Route(m.ReleasePoolRequest, ipam.release_pool),
        "IpamDriver.RequestAddress": Route(m.RequestAddressRequest, ipam.request_address),
        "IpamDriver.ReleaseAddress": Route(m.ReleaseAddressRequest, ipam.release_address),
    }


class Dispatcher:
    """Runs one Docker call: parse, validate, handle, serialize; every failure becomes a JSON error reply."""

    def __init__(self, routes: dict[str, Route]):
        self._routes = routes

    def dispatch(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        route = self._routes.get(method)
        label = method if route else "unknown"
        payload: dict[str, Any] = {}
        try:
            if route is None:
                raise UnknownMethod(f"unknown method {method!r}")
            payload = _parse(body)
            if not payload and route.request is not m.Empty and not body.strip():
                # Never a guessed default (e.g. RequestPool's default pool) for a body that did not arrive.
                raise BadRequest(f"invalid request: {method} needs a JSON body and got an empty one")
            request = route.request.model_validate(payload)
            with logcontext.bind_request(method, payload):
                reply = route.handler(request)
            status, answer = 200, reply.model_dump(exclude_none=True)
        except Exception as exc:
            with logcontext.bind_request(method, payload):
                status, answer = error_reply(exc, method)
            if status == 400 and route is not None and not body.strip():
                answer = {key: text + EMPTY_BODY_HINT for key, text in answer.items()}
        metrics.REQUESTS.labels(method=label, status=str(status)).inc()
        metrics.REQUEST_SECONDS.labels(method=label).observe(time.perf_counter() - started)
        return status, answer


def _parse(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; anything else (bad UTF-8, absurd nesting or numbers) is a 400."""
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"invalid request: body is not JSON ({exc.msg} at position {exc.pos})") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"invalid request: body is not usable JSON ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"invalid request: body must be a JSON object, not {type(payload).__name__}")
    return payload
