"""``--log FILE`` (issue 17): after a session has ended, the file says what happened: the
link opened and closed, every command sent and reply received, every event (a stop with its
cause), the error that ended a command. Nothing of it reaches stderr."""

from __future__ import annotations

import pytest

from ui.cli import DEVICE_COMMANDS, build_parser, main

OVER = """
name = "over"
press = [
  { t_s = 0.5, force_n = 12.0, ramp_s = 0.3 },
  { t_s = 1.5, force_n = 0.0, ramp_s = 0.3 },
]
"""


def test_a_stream_that_stops_is_in_the_log_and_not_on_stderr(tmp_path, capsys):
    scenario = tmp_path / "over.toml"
    scenario.write_text(OVER)
    log = tmp_path / "session.log"
    url = f"sim://ball?speed=10&scenario={scenario}"
    argv = ["stream", url, "--duration", "2", "--record", str(tmp_path / "r"), "--log", str(log)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    text = log.read_text()
    lines = text.splitlines()
    assert "stream sim://ball" in lines[0]  # the command line
    order = [
        "opening (sim link)",
        "send Hello(",
        "recv DeviceInfo(",
        "send SetStream(",
        "recv Ack(",
        "send SetLimit(",
        "'kind': 'step_started'",
        "'kind': 'stop', 'cause': 'over_limit'",
        "closing",
    ]
    where = [next(i for i, ln in enumerate(lines) if step in ln) for step in order]
    assert where == sorted(where), list(zip(order, where, strict=True))
    assert "Keepalive" not in text and "ForceBatch" not in text
    assert "massagectl.session" not in err and "event {" not in err


def test_the_error_that_ended_a_command_is_in_the_log(tmp_path, capsys):
    log = tmp_path / "x.log"
    assert main(["stream", "sim://ball?scenario=/nonexistent.toml", "--log", str(log)]) == 2
    assert "no such scenario file" in capsys.readouterr().err
    assert "ERROR massagectl: stream: error:" in log.read_text()


def test_an_unwritable_log_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["stream", "sim://ball", "--duration", "0.1", "--log", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--log" in err and "cannot write" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", DEVICE_COMMANDS)
def test_every_command_that_talks_to_a_device_takes_log(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert any("--log" in a.option_strings for a in sub.choices[command]._actions)
