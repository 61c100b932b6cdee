"""Warm port pools: Neutron ports bound to this host and plugged (veth in OVS, flows installed by OVN) before a
container asks, per network, so that starting and removing a container needs no Neutron call.

One core for every front end: the Docker driver takes and gives back ports here; a CNI front end or a second
host's Courier would use the same ``PortPools``.
"""

from courier.pool.pools import POOL_OWNER, RESERVED_OWNER, PortPools, pool_tag

__all__ = ["POOL_OWNER", "RESERVED_OWNER", "PortPools", "pool_tag"]
