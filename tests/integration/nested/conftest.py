from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.nested.live import Lab, require_stack


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_stack()
    made = Lab()
    yield made
    made.cleanup()
