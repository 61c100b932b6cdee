"""neutron.api.Neutron over a stand-in openstacksdk proxy: records out, errors translated, bounded retries."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from openstack import exceptions as sdk_exc

from courier.exceptions import Conflict, NeutronUnavailable, NotFound
from courier.neutron import api
from courier.neutron.api import IDEMPOTENT_RETRIES, Neutron


class Proxy:
    """The openstacksdk network proxy calls Neutron makes; each answer (or error) queued per method."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Any]] = {}
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((method, args, kwargs))
            answer = self.answers[method].pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return call


def sdk_network(**fields: Any) -> SimpleNamespace:
    values = {"id": "net-1", "name": "n", "mtu": 1442, "tags": ["a"], "subnet_ids": [], "is_shared": False,
              "created_at": ""}
    return SimpleNamespace(**{**values, **fields})


def http_error(status: int) -> sdk_exc.HttpException:
    return sdk_exc.HttpException(message=f"HTTP {status}", http_status=status)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Proxy:
    monkeypatch.setattr(api, "sleep", lambda seconds: None)
    return Proxy()


def neutron(proxy: Proxy) -> Neutron:
    return Neutron(SimpleNamespace(network=proxy))  # type: ignore[arg-type]


def test_a_network_comes_back_as_courier_s_own_record(proxy: Proxy):
    proxy.answers["create_network"] = [sdk_network(mtu=None)]

    net = neutron(proxy).create_network("n", shared=True)

    assert (net.id, net.name, net.mtu, net.tags) == ("net-1", "n", 1500, frozenset({"a"}))
    assert proxy.calls == [("create_network", (), {"name": "n", "admin_state_up": True, "shared": True})]


def test_reads_retry_while_neutron_is_briefly_unavailable(proxy: Proxy):
    proxy.answers["get_network"] = [http_error(503), sdk_network()]

    assert neutron(proxy).get_network("net-1").id == "net-1"
    assert len(proxy.calls) == 2


def test_reads_give_up_after_the_bounded_retries(proxy: Proxy):
    proxy.answers["get_network"] = [http_error(503)] * (IDEMPOTENT_RETRIES + 1)

    with pytest.raises(NeutronUnavailable, match="reading network net-1: Neutron is unavailable"):
        neutron(proxy).get_network("net-1")
    assert len(proxy.calls) == IDEMPOTENT_RETRIES + 1


def test_creates_are_never_repeated(proxy: Proxy):
    proxy.answers["create_network"] = [http_error(503), sdk_network()]

    with pytest.raises(NeutronUnavailable):
        neutron(proxy).create_network("n")
    assert len(proxy.calls) == 1  # a lost reply may hide a success


@pytest.mark.parametrize(("status", "error"), [(404, NotFound), (409, Conflict)])
def test_http_errors_become_domain_errors(proxy: Proxy, status: int, error: type[Exception]):
    proxy.answers["get_network"] = [http_error(status)]

    with pytest.raises(error, match="reading network net-1"):
        neutron(proxy).get_network("net-1")
    assert len(proxy.calls) == 1


def test_deletes_ignore_what_is_already_gone(proxy: Proxy):
    proxy.answers["delete_network"] = [None]

    neutron(proxy).delete_network("net-1")

    assert proxy.calls == [("delete_network", ("net-1",), {"ignore_missing": True})]
