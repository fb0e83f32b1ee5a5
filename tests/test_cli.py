"""The command line: help for everything, version, one-line errors."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import MASSAGECTL
from ui.cli import build_parser, main


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("massagectl 0.")


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_that_explains_its_options(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: massagectl " + command)
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    for action in sub._actions:
        if action.option_strings and action.help is None:
            pytest.fail(f"{command} {action.option_strings} has no help text")


def test_top_level_help_lists_commands_and_urls(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("stream", "sim", "demo"):
        assert command in out
    assert "sim://ball" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["stream", "nonsense"], "is not a device URL"),
        (["stream", "ftp://x"], "unknown scheme 'ftp'"),
        (["stream", "sim://toaster"], "simulated devices are"),
        (["stream", "ble://AA:BB"], "six hex pairs"),
        (["stream", "sim://ball", "--duration", "-1"], "--duration must be positive"),
        # a speed the simulators cannot honour (issue 20: inf/nan/1e9 hung; 50 lost contact)
        (["demo", "--speed", "50"], "at most 20"),
        (["demo", "--speed", "inf"], "at most 20"),
        (["demo", "--speed", "nan"], "at most 20"),
        (["sim", "serial", "--speed", "inf"], "at most 20"),
        (["sim", "ble", "--speed", "1e9"], "at most 20"),
        (["stream", "sim://ball?speed=1e9", "--duration", "1"], "at most 20"),
        (["vibrate", "sim://ball", "constant", "--speed", "1e9"], "at most 20"),
        (["routine", "neck-relief", "--device", "sim://ball", "--speed", "30"], "at most 20"),
        (["plot", "sim://ball", "--speed", "inf"], "at most 20"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_a_missing_scenario_file_is_one_line():
    result = subprocess.run(
        [MASSAGECTL, "stream", "sim://ball?scenario=/nope.toml", "--duration", "0.1"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "/nope.toml: no such scenario file" in result.stderr
    assert "Traceback" not in result.stderr


def test_stream_of_the_simulated_ball_prints_live_figures():
    result = subprocess.run(
        [MASSAGECTL, "stream", "sim://ball?speed=4", "--duration", "1.2"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "MBALL-1" in result.stderr
    assert "force" in result.stdout and "rate" in result.stdout
    assert "0 missed" in result.stderr
