"""The CNI front end: the ``courier-cni`` executable (a thin client) and the daemon side that runs its calls on
the core (``courier.driver.attachments``). Kept light: the executable imports only ``spec`` and ``main``."""
