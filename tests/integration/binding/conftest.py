from __future__ import annotations

from collections.abc import Iterator

import pytest
from binding_live import Cleanup, Namespaces, Neutron


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    done = Cleanup()
    yield done
    done()


@pytest.fixture
def neutron() -> Iterator[Neutron]:
    api = Neutron()
    yield api
    api.cleanup()


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    made = Namespaces()
    yield made
    made.cleanup()
