"""The operator commands as an operator runs them: ``courier ...`` in a subprocess, on the real local stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import stack

REPO = Path(__file__).resolve().parents[3]


class CLI:
    def __init__(self, workdir: Path):
        self.workdir = workdir

    def config(self, body: str, name: str = "kuryr.conf") -> Path:
        path = self.workdir / name
        path.write_text(body)
        return path

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "courier.cli", *args], capture_output=True, text=True,
                              cwd=REPO, timeout=timeout, env=_env())

    def json(self, *args: str, rc: int | tuple[int, ...] = (0, 1), timeout: float = 120) -> tuple[int, Any]:
        result = self(*args, "--json", timeout=timeout)
        allowed = (rc,) if isinstance(rc, int) else rc
        assert result.returncode in allowed, f"courier {' '.join(args)} exited {result.returncode}:\n" \
                                             f"{result.stdout}\n{result.stderr}"
        return result.returncode, json.loads(result.stdout)


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "DOCKER_HOST": stack.DOCKER_HOST}


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    return CLI(tmp_path)


def base_config(driver_name: str, extra: str = "", endpoint: str = stack.NEUTRON_URL) -> str:
    """A kuryr.conf for the stack: noauth Neutron, this host's id, a driver name of the test's own. The timeout is
    generous: the shared stack's Neutron sometimes takes seconds to answer."""
    return (f"[neutron]\nauth_type = none\nendpoint = {endpoint}\n"
            f"[courier]\ndriver_name = {driver_name}\nneutron_timeout = 20\n" + extra)
