"""What Docker's calls mean in Neutron: pools, networks, endpoints; the cache Neutron can always rebuild."""
