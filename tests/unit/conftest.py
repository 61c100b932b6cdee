"""Fixtures every unit test may use: a FakeNeutron, a dockerd driving Courier over it, the default pool."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import FakeNeutron
from tests.unit.dockerd import Dockerd


@pytest.fixture
def neutron() -> FakeNeutron:
    return FakeNeutron()


@pytest.fixture
def docker(neutron: FakeNeutron) -> Iterator[Dockerd]:
    d = Dockerd(neutron)
    yield d
    d.close()


@pytest.fixture
def kuryr_pool(neutron: FakeNeutron):
    """The default subnetpool ([neutron] default_subnetpool_v4) that networks without --subnet draw from."""
    return neutron.add_subnetpool("kuryr", ["10.200.0.0/16"], 24)
