"""Binding: put a container interface onto the Neutron port's backend.

Two kinds of drivers, both found by entry point:
- a *link* driver makes the container's interface (veth on bare metal; vlan/macvlan/ipvlan when nested in a
  VM);
- a *plug* driver attaches the host end of a veth to whatever Neutron bound the port to (by
  ``binding:vif_type``).

What other packages may use (nothing else): the facade ``manager.Binder`` and the ``vif`` types (with
``vif.device_names``) for the driver; ``nested.vm_interface`` for the nested driver; ``ovsdb.Ovsdb``,
``netdev`` and ``vif.device_names`` for the operator tools in ``courier.ops``.
"""
