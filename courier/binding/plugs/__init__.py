"""Plug drivers: attach the host end to the port's backend (entry point group ``courier.plug_drivers``,
one entry per binding:vif_type)."""
