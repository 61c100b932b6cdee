"""Courier: Docker networking on OpenStack Neutron (the Kuryr architecture)."""

__version__ = "0.1.0"
