"""Routines as data: the built-ins validate and follow DESIGN.md's neck routine; each
rejection rule names file, step and field; the CLI lists and shows steps."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from device.errors import RoutineError, UsageError
from device.routine.routines import (
    MIN_RELEASE_S,
    ResumeKind,
    Side,
    StepKind,
    Technique,
    builtin_names,
    load_routine,
    parse_routine,
)
from dsp.zones import BAND_MAX_FRACTION, DEFAULT_ZONES
from ui import cli

ROOT = Path(__file__).resolve().parents[1]
MASSAGECTL = Path(sys.executable).with_name("massagectl")
BUILTINS = ("neck-relief", "wall-ball", "sock-balls", "partner")

HEADER = """
name = "test-routine"
title = "Test"
"""


def routine_file(tmp_path: Path, steps: str, header: str = HEADER) -> Path:
    path = tmp_path / "my-routine.toml"
    path.write_text(header + steps)
    return path


def rejects(tmp_path: Path, steps: str, step: str | None, field: str, *phrases: str):
    """Load ``steps`` and assert a RoutineError naming the file, the step and the field."""
    path = routine_file(tmp_path, steps)
    with pytest.raises(RoutineError) as info:
        load_routine(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    if step is not None:
        assert step in msg, msg
    assert f"field '{field}'" in msg, msg
    for phrase in phrases:
        assert phrase in msg, msg
    return msg


def press(**fields: str) -> str:
    """A valid press_and_hold step with some fields replaced (values are TOML text)."""
    base = {
        "id": '"squeeze"',
        "kind": '"press_and_hold"',
        "title": '"Squeeze"',
        "instruction": '"Press the ball into the {side} shoulder."',
        "zone": '"upper_trapezius"',
        "band_n": "[15, 30]",
        "hold_min_s": "10",
        "hold_max_s": "15",
        "release_s": "2",
        "sides": '"both"',
    }
    for key, value in fields.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return "[[steps]]\n" + "".join(f"{k} = {v}\n" for k, v in base.items())


# ------------------------------------------------------------------ the built-ins


def test_builtins_are_the_four():
    assert set(builtin_names()) == set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_validates_and_expands(name):
    routine = load_routine(name)
    assert routine.name == name
    assert routine.steps[-1].kind is StepKind.AFTERCARE
    for unit in routine.units():
        zone = unit.zone
        assert zone.limit_n <= DEFAULT_ZONES[zone.name].limit_n
        if unit.step.applies_pressure:
            assert not zone.forbidden
            assert unit.band_n[1] <= BAND_MAX_FRACTION * unit.limit_n + 1e-9
            assert unit.step.release_s >= MIN_RELEASE_S
            assert unit.vibration.intensity_pct <= zone.vibration_cap_pct
        else:
            assert unit.band_n is None
        if unit.step.kind is StepKind.STRETCH:
            assert not unit.vibration.is_on
        assert "{" not in unit.instruction and unit.instruction.strip()


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_file_checks_from_its_path(name):
    path = ROOT / "device" / "routine" / "builtin" / f"{name}.toml"
    assert load_routine(path).name == name


def test_neck_relief_follows_the_design():
    r = load_routine("neck-relief")
    kinds = [s.kind for s in r.steps]
    assert kinds == [
        StepKind.CUE,
        StepKind.PRESS_AND_HOLD,
        StepKind.TIMED_PRESSURE,
        StepKind.STRETCH,
        StepKind.AFTERCARE,
    ]
    squeeze, circles, stretch = r.steps[1], r.steps[2], r.steps[3]
    # Squeeze and release: each side, 10-15 s, slow release, limit stepping down to the skull.
    assert squeeze.sides is Side.BOTH
    assert (squeeze.hold_min_s, squeeze.hold_max_s) == (10, 15)
    assert squeeze.release_s >= 2
    first_sweep = squeeze.units()[: len(squeeze.positions)]
    assert [u.zone_name for u in first_sweep][0] == "upper_trapezius"
    assert first_sweep[-1].zone_name == "suboccipital"
    limits = [u.limit_n for u in first_sweep]
    assert limits == sorted(limits, reverse=True) and limits[0] > limits[-1]
    assert "{" not in first_sweep[0].instruction and "right hand" in first_sweep[0].instruction
    # Suboccipital: gentle circles 30-60 s a side.
    assert circles.technique is Technique.CIRCLES and circles.sides is Side.BOTH
    assert (circles.hold_min_s, circles.hold_max_s) == (30, 60)
    assert circles.positions[0].zone == "suboccipital"
    assert circles.resume.kind is ResumeKind.AUTO_AFTER_RESET
    # Stretch: 20-30 s each side, no vibration.
    assert (stretch.hold_min_s, stretch.hold_max_s) == (20, 30) and stretch.sides is Side.BOTH
    assert all(not u.vibration.is_on for u in stretch.units())
    # Around 8-12 minutes of routine time.
    assert 8 * 60 <= r.approx_duration_s() <= 12 * 60


def test_other_builtins_durations_and_zones():
    wall = load_routine("wall-ball")
    roll = wall.step("shoulder-blade-roll")
    assert roll.technique is Technique.ROLLING and (roll.hold_min_s, roll.hold_max_s) == (30, 60)
    assert {u.zone_name for u in roll.units()} == {"upper_back"}
    socks = load_routine("sock-balls")
    rest = socks.step("skull-base-rest")
    assert rest.technique is Technique.SUSTAINED and (rest.hold_min_s, rest.hold_max_s) == (60, 90)
    assert {u.zone_name for u in rest.units()} == {"suboccipital_lying"}
    partner = load_routine("partner")
    assert partner.mode.value == "partner"
    knead = partner.step("trapezius-kneading")
    zones = [p.zone for p in knead.positions]
    assert zones[0] == "upper_trapezius" and "levator_scapulae" in zones
    limits = [u.limit_n for u in knead.units()[: len(knead.positions)]]
    assert limits == sorted(limits, reverse=True)


def test_units_order_side_then_repetition_then_position():
    squeeze = load_routine("neck-relief").step("trapezius-squeeze")
    units = squeeze.units()
    n_pos = len(squeeze.positions)
    assert len(units) == 2 * squeeze.repetitions * n_pos
    assert [u.side for u in units[: n_pos * squeeze.repetitions]] == [Side.LEFT] * (
        n_pos * squeeze.repetitions
    )
    assert [u.repetition for u in units[: 2 * n_pos]] == [1] * n_pos + [2] * n_pos
    assert [u.index for u in units] == list(range(len(units)))


def test_units_under_a_profile_zone_table():
    """The runner may expand with a profile's zones: a lowered limit flows into the unit."""
    zones = dict(DEFAULT_ZONES)
    zones["upper_back"] = replace(zones["upper_back"], limit_n=70.0)
    roll = load_routine("wall-ball").step("shoulder-blade-roll")
    assert {u.limit_n for u in roll.units(zones)} == {70.0}


# ------------------------------------------------------------------ rejection rules


def test_minimal_valid_routine(tmp_path):
    r = load_routine(routine_file(tmp_path, press()))
    (step,) = r.steps
    assert step.kind is StepKind.PRESS_AND_HOLD and len(step.units()) == 2
    assert step.resume.kind is ResumeKind.ASK


def test_rejects_band_above_80_percent_of_limit(tmp_path):
    rejects(tmp_path, press(band_n="[15, 33]"), "step 1 (squeeze)", "band_n", "80 %", "32 N")


def test_rejects_band_above_80_percent_of_lowered_limit(tmp_path):
    rejects(tmp_path, press(limit_n="30", band_n="[10, 25]"), "step 1 (squeeze)", "band_n", "24")


def test_rejects_band_in_a_position(tmp_path):
    steps = press(zone=None, band_n=None) + (
        '[[steps.positions]]\nname = "neck"\nzone = "neck_back"\nband_n = [3, 9]\n'
    )
    rejects(tmp_path, steps, "step 1 (squeeze)", "positions[1].band_n", "neck_back")


def test_rejects_vibration_above_zone_cap(tmp_path):
    steps = press(zone='"neck_back"', band_n="[3, 7]") + (
        'vibration = { pattern = "pulse", intensity_pct = 50 }\n'
    )
    rejects(tmp_path, steps, "step 1 (squeeze)", "vibration.intensity_pct", "cap of 30 %")


def test_rejects_position_intensity_above_cap(tmp_path):
    steps = (
        press(zone=None, band_n=None)
        + 'vibration = { pattern = "pulse", intensity_pct = 20 }\n'
        + '[[steps.positions]]\nname = "base"\nzone = "suboccipital"\nband_n = [2, 6]\n'
        + "intensity_pct = 40\n"
    )
    rejects(tmp_path, steps, "step 1 (squeeze)", "positions[1].intensity_pct", "cap")


@pytest.mark.parametrize("zone", ["neck_front", "neck_side"])
@pytest.mark.parametrize("kind", ["press_and_hold", "timed_pressure"])
def test_rejects_pressure_on_front_or_side_of_neck(tmp_path, zone, kind):
    extra = {"technique": '"circles"'} if kind == "timed_pressure" else {}
    steps = press(kind=f'"{kind}"', zone=f'"{zone}"', band_n="[0.5, 1]", **extra)
    rejects(tmp_path, steps, "step 1 (squeeze)", "zone", zone, "no pressure step")


def test_rejects_forbidden_zone_in_a_position(tmp_path):
    steps = press() + '[[steps.positions]]\nname = "side"\nzone = "neck_side"\nband_n = [0.5, 1]\n'
    rejects(tmp_path, steps, "step 1 (squeeze)", "positions[1].zone", "neck_side")


def stretch(extra: str = "") -> str:
    return (
        '[[steps]]\nid = "tilt"\nkind = "stretch"\ntitle = "Tilt"\n'
        'instruction = "Lean your head to the {side}."\nsides = "both"\n'
        "hold_min_s = 20\nhold_max_s = 30\n" + extra
    )


def test_stretch_is_valid_without_vibration(tmp_path):
    (step,) = load_routine(routine_file(tmp_path, stretch())).steps
    assert step.kind is StepKind.STRETCH and not step.vibration.is_on


def test_rejects_stretch_with_vibration(tmp_path):
    steps = stretch('vibration = { pattern = "wave", intensity_pct = 10 }\n')
    rejects(tmp_path, steps, "step 1 (tilt)", "vibration", "vibration off")


def test_rejects_stretch_with_pressure_band(tmp_path):
    rejects(tmp_path, stretch("band_n = [1, 2]\n"), "step 1 (tilt)", "band_n", "no pressure")


def test_rejects_unknown_step_field(tmp_path):
    rejects(tmp_path, press(colour='"blue"'), "step 1 (squeeze)", "colour", "unknown field")


def test_rejects_unknown_routine_field(tmp_path):
    path = routine_file(tmp_path, press(), header=HEADER + 'author = "me"\n')
    with pytest.raises(RoutineError, match=r"my-routine.toml: field 'author': unknown field"):
        load_routine(path)


def test_rejects_unknown_position_field(tmp_path):
    steps = press() + '[[steps.positions]]\nname = "a"\nforce = 3\n'
    rejects(tmp_path, steps, "step 1 (squeeze)", "positions[1].force", "unknown field")


@pytest.mark.parametrize(
    ("field", "value", "phrase"),
    [
        ("hold_min_s", '"ten"', "must be a number"),
        ("hold_max_s", "true", "must be a number"),
        ("band_n", "15", "two numbers"),
        ("band_n", "[30, 15]", "low < high"),
        ("sides", '"front"', "must be one of"),
        ("repetitions", "1.5", "must be an integer"),
        ("title", "3", "must be a string"),
        ("kind", '"massage"', "must be one of"),
    ],
)
def test_rejects_wrong_types(tmp_path, field, value, phrase):
    rejects(tmp_path, press(**{field: value}), "step 1", field, phrase)


def test_rejects_limit_above_ceiling(tmp_path):
    rejects(tmp_path, press(limit_n="70"), "step 1 (squeeze)", "limit_n", "ceiling of 60 N")


def test_rejects_limit_raise_above_zone_limit(tmp_path):
    rejects(tmp_path, press(limit_n="50"), "step 1 (squeeze)", "limit_n", "only lower")


def test_rejects_fast_release(tmp_path):
    rejects(tmp_path, press(release_s="1"), "step 1 (squeeze)", "release_s", "at least 2")


def test_rejects_hold_max_below_min(tmp_path):
    rejects(tmp_path, press(hold_max_s="5"), "step 1 (squeeze)", "hold_max_s", "at least")


def test_rejects_unknown_vibration_pattern(tmp_path):
    steps = press() + 'vibration = { pattern = "disco", intensity_pct = 10 }\n'
    rejects(tmp_path, steps, "step 1 (squeeze)", "vibration.pattern", "disco", "knead")


def test_rejects_bad_resume_policy(tmp_path):
    rejects(
        tmp_path,
        press(resume='{ policy = "auto_after_reset" }'),
        "step 1 (squeeze)",
        "resume.after_s",
        "required",
    )
    rejects(tmp_path, press(resume='"maybe"'), "step 1 (squeeze)", "resume.policy", "ask")


def test_rejects_timed_pressure_without_technique(tmp_path):
    rejects(tmp_path, press(kind='"timed_pressure"'), "step 1 (squeeze)", "technique", "circles")


def test_rejects_pressure_step_without_zone(tmp_path):
    rejects(tmp_path, press(zone=None), "step 1 (squeeze)", "zone", "required")


def test_rejects_side_placeholder_without_sides(tmp_path):
    rejects(tmp_path, press(sides='"none"'), "step 1 (squeeze)", "instruction", "{side}")


def test_rejects_unknown_zone_and_duplicate_ids(tmp_path):
    rejects(tmp_path, press(zone='"elbow"'), "step 1 (squeeze)", "zone", "unknown zone")
    rejects(tmp_path, press() + press(), "step 2 (squeeze)", "id", "duplicate")


def test_second_step_is_named(tmp_path):
    cue = '[[steps]]\nid = "sit"\nkind = "cue"\ntitle = "Sit"\ninstruction = "Sit."\n'
    rejects(tmp_path, cue + "duration_s = 5\n" + press(band_n="[1, 40]"), "step 2 (squeeze)",
            "band_n")  # fmt: skip


def test_rejects_invalid_toml(tmp_path):
    path = routine_file(tmp_path, "[[steps]\n")
    with pytest.raises(RoutineError, match="my-routine.toml: not valid TOML"):
        load_routine(path)


# ---- issue 14: what fuzzing found -------------------------------------------------------


@pytest.mark.parametrize(
    "instruction",
    ["Press the {side:d} shoulder.", "Press {side!z}.", "Press {side:=^x}.",
     "Press {side:{opposite}}.", "Press {side[0]}.", "Press {side.upper}."],
)  # fmt: skip
def test_rejects_a_placeholder_that_cannot_be_filled(tmp_path, instruction):
    """``{side:d}`` passed the check and crashed the run when the runner filled it."""
    msg = rejects(tmp_path, press(instruction=f'"{instruction}"'), "step 1 (squeeze)",
                  "instruction", "placeholder")  # fmt: skip
    assert "\n" not in msg


def test_a_placeholder_with_a_valid_format_spec_is_fine(tmp_path):
    routine = load_routine(routine_file(tmp_path, press(instruction='"Press {side:>6}."')))
    assert [u.instruction for u in routine.units()][:1] == ["Press   left."]


def test_a_bad_placeholder_in_a_position_is_rejected(tmp_path):
    steps = press(band_n=None) + (
        '[[steps.positions]]\nname = "a"\nband_n = [5, 10]\ninstruction = "{opposite:d}"\n'
    )
    rejects(tmp_path, steps, "step 1 (squeeze)", "positions[1].instruction", "placeholder")


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (HEADER.encode() + b'summary = "\xff\xfe"\n', "not UTF-8 text"),
        (HEADER.encode() + press(hold_min_s="1" + "0" * 400).encode(), "integer out of range"),
        (HEADER.encode() + b"summary = " + b"[" * 2000 + b"]" * 2000, "nested too deep"),
    ],
)
def test_rejects_undecodable_huge_and_deep_files(tmp_path, capsys, content, phrase):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(RoutineError, match=phrase) as info:
        load_routine(path)
    assert str(path) in str(info.value)
    assert cli.main(["routines", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert phrase in err and str(path) in err and len(err.splitlines()) == 1, err


def test_a_bad_placeholder_fails_routines_check_in_one_line(tmp_path, capsys):
    path = routine_file(tmp_path, press(instruction='"Press the {side:d} shoulder."'))
    assert cli.main(["routines", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "field 'instruction'" in err and len(err.splitlines()) == 1, err


def test_unknown_builtin_is_a_usage_error():
    with pytest.raises(UsageError, match="no built-in routine 'nope'"):
        load_routine("nope")


def test_parse_routine_names_its_origin():
    with pytest.raises(RoutineError, match="^somewhere: field 'name'"):
        parse_routine('title = "x"\n', "somewhere")


# ------------------------------------------------------------------ the CLI


def test_cli_lists_builtins_in_process(capsys):
    assert cli.main(["routines"]) == 0
    out = capsys.readouterr().out
    for name in BUILTINS:
        assert name in out
    assert "Neck relief" in out and "min" in out


def test_cli_show_prints_steps_zones_bands_times_in_process(capsys):
    assert cli.main(["routines", "show", "neck-relief", "--instructions"]) == 0
    out = capsys.readouterr().out
    for text in (
        "trapezius-squeeze",
        "upper_trapezius",
        "suboccipital",
        "15-30 N",
        "10-15 s",
        "30-60 s",
        "20-30 s",
        "no pressure",
        "aftercare",
        "left (then right)",
    ):
        assert text in out, text


def test_cli_check_rejects_bad_file(tmp_path, capsys):
    path = routine_file(tmp_path, press(band_n="[15, 35]"))
    assert cli.main(["routines", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "field 'band_n'" in err and "step 1 (squeeze)" in err
    good = routine_file(tmp_path, press())
    assert cli.main(["routines", "check", str(good)]) == 0
    assert "ok" in capsys.readouterr().out


def test_cli_subprocess_list_and_show():
    listing = subprocess.run(
        [str(MASSAGECTL), "routines"], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert listing.returncode == 0, listing.stderr
    assert all(name in listing.stdout for name in BUILTINS)
    show = subprocess.run(
        [str(MASSAGECTL), "routines", "show", "sock-balls"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert show.returncode == 0, show.stderr
    for text in ("suboccipital_lying", "10-22 N", "60-90 s", "30 N"):
        assert text in show.stdout, text
