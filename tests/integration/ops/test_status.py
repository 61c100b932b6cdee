"""``courier status`` after a real session (Courier process + dockerd): what it says is what Neutron and OVS hold."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from courier.neutron import tags
from tests import stack
from tests.e2e.conftest import Courier
from tests.integration.ops.conftest import CLI

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[Courier, str, str]]:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    stack.require("the test dockerd at " + stack.DOCKER_HOST, stack.docker_up())
    tag = uuid.uuid4().hex[:6]
    server = Courier(tmp_path, driver_name=f"status-{tag}")
    server.start()
    network, container = f"st-{tag}", f"st-{tag}-c"
    docker_id = ""
    try:
        stack.docker("network", "create", "-d", server.driver_name, "--ipam-driver", server.driver_name,
                     "--subnet", f"10.237.{int(tag, 16) % 250}.0/24", network)
        docker_id = stack.docker("network", "inspect", "-f", "{{.Id}}", network).stdout.strip()
        stack.docker("run", "-d", "--name", container, "--net", network, stack.IMAGE, "sleep", "600")
        yield server, network, container
    finally:
        stack.docker("rm", "-f", container, check=False)
        stack.docker("network", "rm", network, check=False)
        # A delete Neutron was too slow for is finished in the background: give Courier the time to.
        deadline = time.monotonic() + 60
        query = "/networks?tags=" + ",".join(tags.docker_id_tags(docker_id))
        while docker_id and stack.neutron("GET", query)["networks"] and time.monotonic() < deadline:
            time.sleep(1)
        server.stop()


def test_status_matches_neutron_and_ovs(cli: CLI, session: tuple[Courier, str, str]) -> None:
    server, network, container = session
    docker_id = stack.docker("network", "inspect", "-f", "{{.Id}}", network).stdout.strip()
    endpoint_id = stack.docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").EndpointID}}}}',
                               container).stdout.strip()

    _, doc = cli.json("status", "--config-file", str(server.config), "--docker-host", stack.DOCKER_HOST)

    (entry,) = [n for n in doc["networks"] if n["docker"] and n["docker"]["id"] == docker_id]
    assert entry["problems"] == [], entry["problems"]
    assert entry["docker"]["name"] == network and entry["docker"]["driver"] == server.driver_name
    # the network: the one Neutron network carrying the Docker id's tags, marked for this host
    (net,) = stack.neutron("GET", "/networks?tags=" + ",".join(tags.docker_id_tags(docker_id)))["networks"]
    assert entry["neutron"]["id"] == net["id"] and entry["neutron"]["name"] == net["name"]
    assert entry["neutron"]["mtu"] == net["mtu"] and entry["neutron"]["host_mark"] == doc["host"]
    subnets = stack.neutron("GET", f"/subnets?network_id={net['id']}")["subnets"]
    assert {(s["id"], s["cidr"], s["gateway_ip"], s["subnetpool_id"]) for s in subnets} == \
        {(s["id"], s["cidr"], s["gateway_ip"], s["subnetpool_id"]) for s in entry["subnets"]}
    # the endpoint: its Neutron port, with the binding Neutron reports
    (ep,) = entry["endpoints"]
    assert ep["endpoint_id"] == endpoint_id and ep["container"] == container
    (port,) = stack.neutron("GET", f"/ports?device_id={endpoint_id}")["ports"]
    shown = ep["port"]
    assert shown["id"] == port["id"] and shown["mac_address"] == port["mac_address"]
    assert (shown["status"], shown["vif_type"], shown["host"]) == \
        (port["status"], port["binding:vif_type"], port["binding:host_id"]) == ("ACTIVE", "ovs", doc["host"])
    assert shown["fixed_ips"] == [f["ip_address"] for f in port["fixed_ips"]] == ep["addresses"]
    # the local OVS interface of that port
    ovs_name = subprocess.run(["ovs-vsctl", "--bare", "--columns=name", "find", "Interface",
                               f"external_ids:iface-id={port['id']}"], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert shown["ovs"]["name"] == ovs_name and shown["ovs"]["bridge"] == "br-int"
    assert shown["ovs"]["ovn_installed"] and shown["ovs"]["ofport"] > 0

    text = cli("status", "--config-file", str(server.config), "--docker-host", stack.DOCKER_HOST).stdout
    assert f"NETWORK {network} ({docker_id[:12]}" in text and port["id"] in text and container in text
