"""Configuration: kuryr-libnetwork's ``kuryr.conf`` (same sections, names and defaults) plus Courier's own."""

from courier.config.options import CONF, load, register_opts

__all__ = ["CONF", "load", "register_opts"]
