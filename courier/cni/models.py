"""Typed CNI calls as the daemon receives them from ``courier-cni``, and the results it gives back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from courier.driver import options as o


class NetConf(BaseModel):
    """A network configuration (one plugin of a conflist, with ``name`` and ``cniVersion`` filled in)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    cniVersion: str
    name: str
    type: str = "courier-cni"
    network: str = ""  # Neutron network id or name
    # kuryr-libnetwork's keys work too, as in `docker network create -o`: neutron.net.uuid / neutron.net.name
    options: dict[str, str] = Field(default_factory=dict)
    prevResult: dict[str, Any] | None = None
    runtimeConfig: dict[str, Any] = Field(default_factory=dict)
    args: dict[str, Any] = Field(default_factory=dict)
    valid_attachments: list[dict[str, str]] | None = Field(default=None, alias="cni.dev/valid-attachments")

    def neutron_network(self) -> str:
        return self.network or self.options.get(o.NET_UUID) or self.options.get(o.NET_NAME) or ""


class CniCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    containerId: str = ""
    netns: str = ""
    ifname: str = ""
    args: str = ""  # CNI_ARGS: "K=V;K2=V2"
    config: NetConf

    def cni_args(self) -> dict[str, str]:
        pairs = (item.partition("=") for item in self.args.split(";") if item)
        return {key: value for key, _, value in pairs}
