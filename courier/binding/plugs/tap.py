"""vif_type ``tap``: the backend (e.g. Calico) routes to the host end itself, which stays unbridged."""

from __future__ import annotations

from courier.binding.base import PlugDriver
from courier.binding.vif import VIF


class TapPlug(PlugDriver):
    vif_types = ("tap",)

    def plug(self, vif: VIF) -> None:
        pass

    def unplug(self, vif: VIF) -> None:
        pass
