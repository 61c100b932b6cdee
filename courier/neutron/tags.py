"""kuryr-libnetwork's tag and naming scheme, so that resources either of them made are recognised by both.

Neutron tags are at most 60 characters, so a 64-hex Docker id is split over two tags.
"""

from __future__ import annotations

LOW_HALF = "kuryr.net.uuid.lh:"
HIGH_HALF = "kuryr.net.uuid.uh:"
EXISTING_NETWORK = "kuryr.net.existing:"  # + Docker network id[:12]
EXISTING_SUBNETPOOL = "kuryr.subnetpool.existing"
EXISTING_PORT = "kuryr.port.existing"
DEVICE_OWNER = "compute:kuryr"

SUBNETPOOL_NAME_PREFIX = "kuryrPool"
SUBNET_NAME_PREFIX = "kuryr-subnet-"
NETWORK_NAME_PREFIX = "kuryr-net-"
IPAM_PORT_NAME = "kuryr-unbound-port"  # kuryr-libnetwork's name for ports its IPAM created
ORIGINAL_MAC = "courier.orig-mac:"  # an adopted port's own MAC, restored when it is given back
HOST = "courier.host:"  # + binding host id: the host whose Courier created the network (courier gc's scope)
MAX_TAG_LEN = 60
CNI_ATTACHMENT = "courier.cni"  # a port the CNI front end attached (no Docker endpoint behind it)
CNI_NETNS = "courier.cni.netns:"  # + the name of its namespace under /run/netns: gone with it, the port is a leftover


def docker_id_tags(docker_id: str) -> list[str]:
    """The two tags that carry a Docker network or endpoint id."""
    tags = [LOW_HALF + docker_id[:32]]
    if len(docker_id) > 32:
        tags.append(HIGH_HALF + docker_id[32:64])
    return tags


def host_tag(host_id: str) -> str:
    return (HOST + host_id)[:MAX_TAG_LEN]


def existing_network_tag(docker_id: str) -> str:
    return EXISTING_NETWORK + docker_id[:12]


def docker_ids_from_tags(tags: frozenset[str] | set[str]) -> list[str]:
    """Every Docker network id the tags may carry. A network shared by Docker networks of several hosts has
    several halves of each kind, which tags cannot pair: every pairing is a candidate (the wrong ones match no
    Docker network)."""
    lows = sorted(t[len(LOW_HALF):] for t in tags if t.startswith(LOW_HALF))
    highs = sorted(t[len(HIGH_HALF):] for t in tags if t.startswith(HIGH_HALF)) or [""]
    return [low + high for low in lows for high in highs]


def host_marks(tags: frozenset[str] | set[str]) -> set[str]:
    """The binding hosts whose Courier created the network or uses it as an existing network."""
    return {t[len(HOST):] for t in tags if t.startswith(HOST)}


def docker_id_from_tags(tags: frozenset[str] | set[str]) -> str | None:
    low = next((t[len(LOW_HALF):] for t in tags if t.startswith(LOW_HALF)), None)
    high = next((t[len(HIGH_HALF):] for t in tags if t.startswith(HIGH_HALF)), "")
    return low + high if low else None


def endpoint_port_name(endpoint_id: str) -> str:
    """kuryr-libnetwork's name for an endpoint's port (its get_neutron_port_name)."""
    return f"{endpoint_id}-port"


def network_name(docker_id: str) -> str:
    return NETWORK_NAME_PREFIX + docker_id[:8]


def subnet_name(cidr: str) -> str:
    return SUBNET_NAME_PREFIX + cidr


def subnetpool_name(cidr: str, prefix: str = SUBNETPOOL_NAME_PREFIX) -> str:
    return f"{prefix}-{cidr}"
