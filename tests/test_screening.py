"""The screening gate (DESIGN.md, "Safety model", item 3): every red flag refuses with its
tier of advice, incomplete or unknown answers are refused, and without a terminal and
without an answers file the gate refuses at once instead of waiting for input."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from device.errors import MassagectlError, ScreeningRefusal, UsageError
from device.screening.gate import (
    QUESTION_IDS,
    QUESTIONS,
    SIMULATED_NOTICE,
    TIER_ADVICE,
    AdviceTier,
    ScreeningRefused,
    ensure_screened,
    evaluate,
    get_question,
    load_answers_file,
    require_screening,
    simulated_user_answers,
)
from ui import cli
from ui.screening_prompt import format_result, screen_before_session, terminal_asker

ROOT = Path(__file__).resolve().parents[1]
MASSAGECTL = Path(sys.executable).with_name("massagectl")

RED_FLAGS = {
    "injury": AdviceTier.SEEK_CARE_NOW,
    "sudden_pain": AdviceTier.SEEK_CARE_NOW,
    "severe_pain": AdviceTier.SEEK_CARE_NOW,
    "unexplained_pain": AdviceTier.SEEK_CARE_NOW,
    "movement_blocked": AdviceTier.SEEK_CARE_NOW,
    "fever": AdviceTier.SEEK_CARE_NOW,
    "severe_headache": AdviceTier.SEEK_CARE_NOW,
    "dizziness": AdviceTier.SEEK_CARE_NOW,
    "vision_changes": AdviceTier.SEEK_CARE_NOW,
    "arm_symptoms": AdviceTier.ASK_DOCTOR_FIRST,
    "osteoporosis": AdviceTier.ASK_DOCTOR_FIRST,
    "blood_clots": AdviceTier.ASK_DOCTOR_FIRST,
    "connective_tissue": AdviceTier.ASK_DOCTOR_FIRST,
}
INCLUSION = ("mild_pain", "recent_pain", "muscular_cause")


def passing() -> dict[str, bool]:
    return simulated_user_answers()


def write_answers(tmp_path: Path, answers: dict, suffix: str = ".json") -> Path:
    path = tmp_path / f"answers{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(answers))
    else:
        path.write_text("".join(f"{k} = {str(v).lower()}\n" for k, v in answers.items()))
    return path


def test_questions_cover_design_and_have_stable_unique_ids():
    assert set(QUESTION_IDS) == set(RED_FLAGS) | set(INCLUSION)
    assert len(QUESTION_IDS) == len(set(QUESTION_IDS))
    for qid in INCLUSION:
        assert get_question(qid).refuse_if is False
    for qid in RED_FLAGS:
        assert get_question(qid).is_red_flag


def test_passing_answers_pass():
    result = evaluate(passing(), source="test", now=lambda: 1_700_000_000.0)
    assert result.passed and result.tier is None and result.findings == ()
    assert result.raise_if_refused() is result
    record = result.to_record()
    assert record["passed"] is True and record["kind"] == "screening"
    assert record["answers"] == passing() and record["simulated"] is False
    assert record["timestamp_utc"] == "2023-11-14T22:13:20+00:00"
    json.dumps(record)  # storable as is


@pytest.mark.parametrize("qid", sorted(RED_FLAGS))
def test_every_red_flag_refuses_with_its_tier(qid):
    answers = passing() | {qid: True}
    result = evaluate(answers, source="test")
    assert not result.passed
    assert result.tier is RED_FLAGS[qid]
    assert result.advice == TIER_ADVICE[RED_FLAGS[qid]]
    assert [f.question_id for f in result.findings] == [qid]
    with pytest.raises(ScreeningRefusal) as info:
        result.raise_if_refused()
    assert get_question(qid).reason in info.value.reason
    assert info.value.advice == TIER_ADVICE[RED_FLAGS[qid]]
    # One line for the CLI carries both.
    assert get_question(qid).reason in str(info.value)
    assert TIER_ADVICE[RED_FLAGS[qid]] in str(info.value)
    assert info.value.result is result


@pytest.mark.parametrize("qid", INCLUSION)
def test_failed_inclusion_refuses(qid):
    result = evaluate(passing() | {qid: False}, source="test")
    assert not result.passed and result.tier is AdviceTier.NOT_SUITABLE


def test_most_urgent_tier_wins_and_all_reasons_are_kept():
    answers = passing() | {"osteoporosis": True, "fever": True, "mild_pain": False}
    result = evaluate(answers, source="test")
    assert result.tier is AdviceTier.SEEK_CARE_NOW
    assert {f.question_id for f in result.findings} == {"osteoporosis", "fever", "mild_pain"}
    text = format_result(result)
    assert TIER_ADVICE[AdviceTier.SEEK_CARE_NOW] in text
    assert TIER_ADVICE[AdviceTier.ASK_DOCTOR_FIRST] in text


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_answers_file_passes(tmp_path, suffix):
    path = write_answers(tmp_path, passing(), suffix)
    assert load_answers_file(path) == passing()
    result = require_screening(device_is_simulated=False, screening_file=path)
    assert result is not None and result.passed and result.source == f"file:{path}"


def test_incomplete_answers_file_is_refused(tmp_path):
    answers = passing()
    del answers["fever"], answers["blood_clots"]
    path = write_answers(tmp_path, answers, ".toml")
    with pytest.raises(ScreeningRefusal, match="no answer for: fever, blood_clots"):
        require_screening(device_is_simulated=False, screening_file=path)


def test_unknown_answer_id_is_refused(tmp_path):
    path = write_answers(tmp_path, passing() | {"feeling_lucky": True})
    with pytest.raises(ScreeningRefusal, match="unknown screening question id.*feeling_lucky"):
        require_screening(device_is_simulated=False, screening_file=path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"fever": "no"}', "unknown|no answer|true or false"),
        ("[1, 2]", "expected a table"),
        ("{not json", "not valid JSON"),
    ],
)
def test_malformed_answers_file_is_refused(tmp_path, content, match):
    path = tmp_path / "a.json"
    path.write_text(content)
    with pytest.raises(ScreeningRefusal, match=match):
        load_answers_file(path)


def test_non_boolean_answer_is_refused(tmp_path):
    path = write_answers(tmp_path, passing() | {"fever": "no"})
    with pytest.raises(ScreeningRefusal, match="true or false.*fever"):
        load_answers_file(path)


def test_missing_answers_file_is_refused(tmp_path):
    with pytest.raises(ScreeningRefusal, match="cannot read"):
        load_answers_file(tmp_path / "nope.toml")


def test_real_device_without_terminal_or_file_refuses():
    with pytest.raises(ScreeningRefusal, match="no terminal"):
        require_screening(device_is_simulated=False)


def test_simulated_device_may_skip_screening():
    assert require_screening(device_is_simulated=True) is None
    ensure_screened(None, device_is_simulated=True)


def test_simulated_user_says_so_and_only_for_simulated_devices():
    lines: list[str] = []
    result = require_screening(device_is_simulated=True, simulated_user=True, announce=lines.append)
    assert lines == [SIMULATED_NOTICE] and "SIMULATED" in lines[0]
    assert result.passed and result.simulated and result.to_record()["simulated"] is True
    with pytest.raises(UsageError):
        require_screening(device_is_simulated=False, simulated_user=True)
    with pytest.raises(ScreeningRefusal, match="simulated user"):
        ensure_screened(result, device_is_simulated=False)


def test_ensure_screened_guards_real_devices():
    with pytest.raises(ScreeningRefusal):
        ensure_screened(None, device_is_simulated=False)
    refused = evaluate(passing() | {"injury": True}, source="test")
    with pytest.raises(ScreeningRefusal):
        ensure_screened(refused, device_is_simulated=False)
    ok = evaluate(passing(), source="test")
    ensure_screened(ok, device_is_simulated=False)


def test_refused_file_raises_with_result(tmp_path):
    path = write_answers(tmp_path, passing() | {"dizziness": True})
    with pytest.raises(ScreeningRefused) as info:
        require_screening(device_is_simulated=True, screening_file=path)
    assert info.value.result.tier is AdviceTier.SEEK_CARE_NOW
    assert isinstance(info.value, MassagectlError)


# ------------------------------------------------------------------ interactive


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def answer_line(answers: dict[str, bool]) -> str:
    return "".join(("yes\n" if answers[q.id] else "n\n") for q in QUESTIONS)


def test_terminal_asker_is_none_without_a_terminal():
    assert terminal_asker(io.StringIO("y\n" * 50), io.StringIO()) is None


def test_interactive_pass_one_question_at_a_time():
    out = io.StringIO()
    stdin = FakeTty(answer_line(passing()))
    result = screen_before_session(device_is_simulated=False, stdin=stdin, stdout=out)
    assert result.passed and result.source == "interactive"
    text = out.getvalue()
    for i, q in enumerate(QUESTIONS, start=1):
        assert f"[{i}/{len(QUESTIONS)}] {q.text} [y/n]" in text


def test_interactive_red_flag_refuses_and_reprompts_on_unclear_answer():
    answers = passing() | {"vision_changes": True}
    stdin = FakeTty("maybe\n" + answer_line(answers))
    out = io.StringIO()
    with pytest.raises(ScreeningRefused) as info:
        screen_before_session(device_is_simulated=False, stdin=stdin, stdout=out)
    assert "please answer y" in out.getvalue()
    assert info.value.result.tier is AdviceTier.SEEK_CARE_NOW
    assert info.value.result.answers["vision_changes"] is True


def test_interactive_end_of_input_refuses():
    stdin = FakeTty("y\ny\n")
    with pytest.raises(ScreeningRefusal, match="ended before every question"):
        screen_before_session(device_is_simulated=False, stdin=stdin, stdout=io.StringIO())


def test_interactive_on_a_real_pseudo_terminal():
    """The prompt over a real pty: a child process reads the answers from the terminal."""
    main_fd, child_fd = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(MASSAGECTL), "screen", "--json"],
            stdin=child_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        os.close(child_fd)
        child_fd = -1
        os.write(main_fd, answer_line(passing()).encode())
        out, err = proc.communicate(timeout=30)
    finally:
        if child_fd >= 0:
            os.close(child_fd)
        os.close(main_fd)
    assert proc.returncode == 0, err.decode()
    record = json.loads(out.decode())  # questions went to stderr
    assert get_question("fever").text in err.decode()
    assert record["passed"] is True and record["source"] == "interactive"


# ------------------------------------------------------------------ the CLI face


def test_screen_without_terminal_or_file_exits_at_once():
    proc = subprocess.run(
        [str(MASSAGECTL), "screen"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=15,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "no terminal" in proc.stderr and "--screening FILE" in proc.stderr


def test_screen_cli_passing_file_in_process(tmp_path, capsys):
    path = write_answers(tmp_path, passing(), ".toml")
    assert cli.main(["screen", "--screening", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["passed"] is True and record["answers"]["fever"] is False


def test_screen_cli_red_flag_prints_reason_and_advice(tmp_path, capsys):
    path = write_answers(tmp_path, passing() | {"blood_clots": True})
    assert cli.main(["screen", "--screening", str(path)]) == 2
    err = capsys.readouterr().err
    assert get_question("blood_clots").reason in err
    assert TIER_ADVICE[AdviceTier.ASK_DOCTOR_FIRST] in err


def test_screen_cli_incomplete_file_is_one_line_error(tmp_path, capsys):
    path = write_answers(tmp_path, {"fever": False})
    assert cli.main(["screen", "--screening", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("massagectl screen: error:") and "no answer for" in err


def test_screen_cli_lists_questions(capsys):
    assert cli.main(["screen", "--questions"]) == 0
    out = capsys.readouterr().out
    for qid in QUESTION_IDS:
        assert qid in out


def test_docs_answers_example_is_complete_and_passes(tmp_path):
    text = (ROOT / "docs" / "screening.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "answers.toml"
    path.write_text(example)
    assert evaluate(load_answers_file(path), source="docs").passed


@pytest.mark.parametrize(
    ("suffix", "content", "phrase"),
    [
        (".toml", b'fever = "\xff"\n', "not UTF-8 text"),
        (".json", b'{"fever": 1' + b"0" * 400 + b"}", "fever: integer out of range"),
        (".toml", b"fever = " + b"[" * 2000 + b"]" * 2000, "nested too deep"),
        (".json", b'{"fever": ' + b"[" * 2000 + b"]" * 2000 + b"}", "nested too deep"),
        (".txt", b"[" * 2000 + b"]" * 2000, "nested too deep"),
        (".json", b'{"fever": NaN}', "not valid JSON"),
    ],
)
def test_undecodable_huge_or_deep_answers_files_are_one_clear_refusal(
    tmp_path, capsys, suffix, content, phrase
):
    path = tmp_path / f"answers{suffix}"
    path.write_bytes(content)
    with pytest.raises(ScreeningRefusal, match=phrase) as info:
        load_answers_file(path)
    assert str(path) in str(info.value)
    assert cli.main(["screen", "--screening", str(path)]) == 2
    first = capsys.readouterr().err.strip().splitlines()[0]
    assert phrase in first and str(path) in first, first
