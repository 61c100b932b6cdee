"""The courier command line: its commands, --version, and how failures reach the operator."""

from __future__ import annotations

import pytest

from courier import __version__, cli


def test_the_commands_operators_use():
    parser = cli.build_parser()
    for command in ("serve", "doctor", "status", "gc", "health"):
        assert parser.parse_args([command]).command == command
    args = parser.parse_args(["serve", "--config-file", "a.conf", "--config-file", "b.conf", "--debug"])
    assert cli._config_args(args) == ["--config-file", "a.conf", "--config-file", "b.conf"] and args.debug


def test_version(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"courier {__version__}"


def test_a_failing_command_prints_one_line_and_exits_1(monkeypatch, capsys: pytest.CaptureFixture[str]):
    def boom(args: object) -> int:
        raise RuntimeError("Neutron said no")

    monkeypatch.setattr(cli, "cmd_serve", boom)

    assert cli.main(["serve"]) == 1
    assert capsys.readouterr().err == "courier: Neutron said no\n"


def test_ctrl_c_exits_130(monkeypatch):
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_serve", interrupted)

    assert cli.main(["serve"]) == 130


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as done:
        cli.main([])
    assert done.value.code == 2
