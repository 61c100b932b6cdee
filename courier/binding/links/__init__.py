"""Link drivers: make the container's interface (entry point group ``courier.link_drivers``)."""
