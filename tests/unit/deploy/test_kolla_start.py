"""deploy/kolla/kolla_start: Kolla's config.json contract (files with owner and mode, permissions, command)."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
KOLLA_START = REPO / "deploy/kolla/kolla_start"
ME = pwd.getpwuid(os.getuid()).pw_name


def kolla_start(tmp_path: Path, config: dict, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return subprocess.run([sys.executable, str(KOLLA_START)], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "KOLLA_CONFIG_FILE": str(tmp_path / "config.json"), **env})


def test_copies_with_owner_and_mode_fixes_permissions_then_runs_the_command(tmp_path: Path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/kuryr.conf").write_text("[DEFAULT]\n")
    dest, logs = tmp_path / "etc/kuryr/kuryr.conf", tmp_path / "log/kuryr"
    done = kolla_start(tmp_path, {
        "command": f"cat {dest}",
        "config_files": [{"source": str(tmp_path / "src/kuryr.conf"), "dest": str(dest), "owner": ME, "perm": "0600"},
                         {"source": str(tmp_path / "src/absent"), "dest": str(tmp_path / "x"), "optional": True}],
        "permissions": [{"path": str(logs), "owner": f"{ME}:{os.getgid()}", "perm": "0750", "recurse": True}]})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[DEFAULT]\n"  # exec'd the command, which read the copy
    assert oct(dest.stat().st_mode & 0o777) == "0o600" and oct(logs.stat().st_mode & 0o777) == "0o750"
    assert not (tmp_path / "x").exists()


def test_a_missing_file_that_is_not_optional_stops_the_start(tmp_path: Path):
    done = kolla_start(tmp_path, {"command": "true", "config_files": [
        {"source": str(tmp_path / "absent"), "dest": str(tmp_path / "d")}]})
    assert done.returncode != 0 and "absent is missing" in done.stderr


def test_an_unknown_owner_is_an_error_not_a_silent_root(tmp_path: Path):
    (tmp_path / "f").write_text("x")
    done = kolla_start(tmp_path, {"command": "true", "config_files": [
        {"source": str(tmp_path / "f"), "dest": str(tmp_path / "g"), "owner": "no-such-user-here"}]})
    assert done.returncode != 0 and "no such user" in done.stderr


def test_the_host_proc_sys_net_mount_is_forgotten_when_absent(tmp_path: Path):
    done = kolla_start(tmp_path, {"command": "sh -c 'echo ${COURIER_PROC_SYS_NET:-unset}'"},
                       COURIER_PROC_SYS_NET=str(tmp_path / "absent"))
    assert done.stdout.strip() == "unset"


def test_kolla_set_configs_check_tells_kolla_ansible_whether_a_copy_is_stale(tmp_path: Path):
    link = tmp_path / "kolla_set_configs"
    link.symlink_to(KOLLA_START)
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.conf").write_text("one")
    (tmp_path / "config.json").write_text(json.dumps({"command": "false", "config_files": [
        {"source": str(tmp_path / "src/*.conf"), "dest": str(tmp_path / "etc") + "/"}]}))
    env = {**os.environ, "KOLLA_CONFIG_FILE": str(tmp_path / "config.json")}

    def set_configs(*args: str) -> int:
        return subprocess.run([sys.executable, str(link), *args], env=env, capture_output=True).returncode

    assert set_configs("--check") == 1  # never copied
    assert set_configs() == 0 and (tmp_path / "etc/a.conf").read_text() == "one"  # copies, runs nothing
    assert set_configs("--check") == 0
    (tmp_path / "src/a.conf").write_text("two")
    assert set_configs("--check") == 1
