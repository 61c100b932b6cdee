"""Build the openstacksdk connection from kuryr.conf's [neutron] keystoneauth options or clouds.yaml.

Also hooks every HTTP exchange with Neutron into metrics, so each call is counted once, in one place.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlparse

import openstack
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from oslo_config import cfg

from courier import metrics
from courier.exceptions import InvalidRequest

LOG = logging.getLogger(__name__)
MAX_CONNECTIONS = 32  # kept-alive connections to Neutron


def connect(conf: cfg.ConfigOpts) -> openstack.connection.Connection:
    conn = openstack.connect(cloud=conf.courier.cloud) if conf.courier.cloud else _connect_from_kuryr_conf(conf)
    _count_calls(conn)
    return conn


def _connect_from_kuryr_conf(conf: cfg.ConfigOpts) -> openstack.connection.Connection:
    auth = ks_loading.load_auth_from_conf_options(conf, "neutron")
    if auth is None:
        raise InvalidRequest("[neutron] auth_type is not set in kuryr.conf (use e.g. password, or none with endpoint)")
    session = ks_loading.load_session_from_conf_options(conf, "neutron", auth=auth)
    if session.timeout is None:
        session.timeout = conf.courier.neutron_timeout
    kwargs: dict[str, Any] = {"session": session, "region_name": conf.neutron.region_name,
                              "network_interface": conf.neutron.endpoint_type}
    endpoint = getattr(conf.neutron, "endpoint", None)  # keystoneauth's "none" plugin option
    if endpoint:
        kwargs["network_endpoint_override"] = endpoint
    return openstack.connection.Connection(**kwargs)


def _count_calls(conn: openstack.connection.Connection) -> None:
    """Count and time every request through a requests response hook (sees SDK-internal calls too)."""
    requests_session = conn.session.session

    def on_response(response: Any, *args: Any, **kwargs: Any) -> None:
        resource = _resource_of(response.request.url)
        metrics.NEUTRON_CALLS.labels(method=response.request.method, resource=resource,
                                     status=str(response.status_code)).inc()
        metrics.NEUTRON_SECONDS.labels(method=response.request.method, resource=resource).observe(
            response.elapsed.total_seconds())

    requests_session.hooks.setdefault("response", []).append(on_response)
    # Docker and CNI call in parallel (and the pools refill meanwhile): more than requests' 10 kept connections,
    # or each extra call pays a new TCP connection.
    for prefix in ("http://", "https://"):
        requests_session.mount(prefix, ks_session.TCPKeepAliveAdapter(pool_connections=4,
                                                                       pool_maxsize=MAX_CONNECTIONS))


def _resource_of(url: str) -> str:
    parts = [p for p in urlparse(url).path.split("/") if p]
    for i, part in enumerate(parts):
        if part.startswith("v2"):
            return parts[i + 1] if i + 1 < len(parts) else "root"
    return parts[0] if parts else "root"


def backoff_delays(retries: int, first: float = 0.2) -> list[float]:
    return [first * (2**i) for i in range(retries)]


def sleep(seconds: float) -> None:
    time.sleep(seconds)
