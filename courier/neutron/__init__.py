"""The Neutron side: a narrow, typed API over openstacksdk, the tag scheme, and error translation."""
