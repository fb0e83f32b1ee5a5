"""Zone profiles (device/config/profiles.py): lowering limits, capping at the ceiling with a
warning, errors naming file and field, the default profile, and ``analyze --profile``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from device.config.profiles import DEFAULT_PROFILE_NAME, load_profile, load_zones, parse_profile
from device.errors import InputFileError
from device.routine.routines import builtin_names, load_routine
from dsp.zones import DEFAULT_ZONES
from tests.dsp.tracegen import smooth_step, times
from ui.cli import main


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_profile_lowers_a_limit_and_leaves_other_zones_alone(tmp_path):
    p = write(tmp_path / "me.toml", "[zones.neck_back]\nlimit_n = 8\n")
    zones, warnings = load_zones(str(p))
    assert warnings == []
    assert zones["neck_back"].limit_n == 8.0
    assert zones["neck_back"].ceiling_n == DEFAULT_ZONES["neck_back"].ceiling_n
    assert zones["neck_back"].warning_n == pytest.approx(6.4)
    assert {k: v for k, v in zones.items() if k != "neck_back"} == {
        k: v for k, v in DEFAULT_ZONES.items() if k != "neck_back"
    }
    assert DEFAULT_ZONES["neck_back"].limit_n == 10.0  # the defaults are untouched


def test_raising_is_capped_at_the_ceiling_with_a_warning_naming_the_file(tmp_path):
    p = write(
        tmp_path / "strong.toml",
        "[zones.upper_trapezius]\nlimit_n = 75\n[zones.neck_back]\nvibration_cap_pct = 50\n",
    )
    zones, warnings = load_zones(str(p))
    assert zones["upper_trapezius"].limit_n == 60.0  # its ceiling
    assert zones["neck_back"].vibration_cap_pct == 30.0  # its default cap
    assert len(warnings) == 2
    assert all(w.startswith(f"{p}: ") for w in warnings)
    assert "capped at 60 N" in warnings[0] and "capped at 30 %" in warnings[1]


def test_a_vibration_cap_may_be_lowered_and_the_meta_says_what_was_asked(tmp_path):
    profile = parse_profile(
        "[zones.upper_back]\nvibration_cap_pct = 40\nlimit_n = 200\n", tmp_path / "p.toml"
    )
    assert profile.zones["upper_back"].vibration_cap_pct == 40.0
    meta = profile.to_meta()
    assert meta["requested"] == {"upper_back": {"vibration_cap_pct": 40.0, "limit_n": 200.0}}
    assert meta["zones"] == {"upper_back": {"limit_n": 120.0, "vibration_cap_pct": 40.0}}
    assert len(meta["warnings"]) == 1
    json.dumps(meta)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[zones.neck_bak]\nlimit_n = 8\n", "zones.neck_bak: unknown zone"),
        ("[zones.neck_back]\nlimit = 8\n", "zones.neck_back.limit: unknown field"),
        ("[zone.neck_back]\nlimit_n = 8\n", "zone: unknown field"),
        ("[zones.neck_back]\nlimit_n = 'eight'\n", "zones.neck_back.limit_n: must be a number"),
        ("[zones.neck_back]\nlimit_n = true\n", "zones.neck_back.limit_n: must be a number"),
        ("[zones.neck_back]\nlimit_n = 0\n", "zones.neck_back.limit_n: must be positive"),
        ("[zones.neck_back]\nlimit_n = nan\n", "zones.neck_back.limit_n: must be a number"),
        ("[zones.neck_back]\nvibration_cap_pct = 120\n", "vibration_cap_pct: must be 0-100"),
        ("zones = 3\n", "zones: must be tables"),
        ("[zones]\nneck_back = 8\n", "zones.neck_back: must be a table"),
        ("[zones.neck_back\nlimit_n = 8\n", "not valid TOML"),
    ],
)
def test_bad_profiles_are_input_errors_naming_file_and_field(tmp_path, text, message):
    p = write(tmp_path / "bad.toml", text)
    with pytest.raises(InputFileError) as info:
        load_profile(p)
    assert str(info.value).startswith(f"{p}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_profile_file_is_an_input_error(tmp_path):
    with pytest.raises(InputFileError, match="no such profile file"):
        load_zones(str(tmp_path / "absent.toml"))


def test_the_default_profile_in_the_config_folder_is_used_when_present():
    folder = Path(os.environ["MASSAGECTL_CONFIG_DIR"])
    assert load_zones(None) == (dict(DEFAULT_ZONES), [])  # none there yet
    write(folder / DEFAULT_PROFILE_NAME, "[zones.suboccipital]\nlimit_n = 6\n")
    zones, _ = load_zones(None)
    assert zones["suboccipital"].limit_n == 6.0
    # a profile given explicitly wins over the default one
    other = write(folder / "other.toml", "[zones.suboccipital]\nlimit_n = 7\n")
    assert load_zones(str(other))[0]["suboccipital"].limit_n == 7.0


def _docs_example_profile(tmp_path) -> Path:
    """The example profile of docs/profiles.md, as the docs show it."""
    doc = (Path(__file__).parent.parent / "docs" / "profiles.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    return write(tmp_path / "example.toml", example)


@pytest.mark.parametrize("name", builtin_names())
def test_a_lowered_limit_scales_the_routine_s_bands_with_it(tmp_path, name):
    """The docs' example profile (neck_back 8 N, suboccipital 6 N and 15 %, upper_trapezius
    30 N) runs every built-in routine: a step's band and limit in a lowered zone are scaled
    by the lowered limit over the default one, and vibration above a lowered cap plays at
    the cap (failed before: "band top 30 N is above 80 % of the upper_trapezius limit" made
    demo and partner unusable)."""
    lowered, _ = load_zones(str(_docs_example_profile(tmp_path)))
    default = load_routine(name)
    scaled = load_routine(name, zones=lowered)
    for a, b in zip(default.units(), scaled.units(lowered), strict=True):
        if a.band_n is None:
            continue
        zone = a.zone_name
        factor = min(1.0, lowered[zone].limit_n / DEFAULT_ZONES[zone].limit_n)
        assert b.band_n == pytest.approx((a.band_n[0] * factor, a.band_n[1] * factor), abs=0.01)
        assert b.band_n[1] <= 0.8 * lowered[zone].limit_n + 1e-9
        if b.vibration.is_on:
            assert b.vibration.intensity_pct <= lowered[zone].vibration_cap_pct


def test_a_limit_lowered_below_what_a_band_can_scale_to_is_still_checked(tmp_path):
    """Scaling keeps every band under 80 % of its lowered limit, so a very strict profile
    loads too; a routine's own limit above the (lowered) zone limit is scaled with it."""
    strict = {"neck_back": 3.0, "suboccipital": 3.0, "upper_trapezius": 10.0}
    text = "".join(f"[zones.{z}]\nlimit_n = {v}\n" for z, v in strict.items())
    lowered, _ = load_zones(str(write(tmp_path / "strict.toml", text)))
    routine = load_routine("neck-relief", zones=lowered)
    tops = {u.zone_name: u.band_n[1] for u in routine.units(lowered) if u.band_n is not None}
    assert tops["upper_trapezius"] <= 8.0 and tops["neck_back"] <= 2.4


def test_routines_show_with_a_profile_shows_the_scaled_bands(tmp_path, capsys):
    profile = _docs_example_profile(tmp_path)
    assert main(["routines", "show", "neck-relief"]) == 0
    plain = capsys.readouterr().out
    assert main(["routines", "show", "neck-relief", "--profile", str(profile)]) == 0
    shown = capsys.readouterr().out
    assert shown != plain
    assert "scaled" in shown


def _trace(path: Path) -> Path:
    t = times(1000.0, 4.0)
    force = smooth_step(t, 0.5, 0.8, 0.0, 9.0) - smooth_step(t, 2.5, 0.8, 0.0, 9.0)  # to 9 N
    np.savetxt(path, np.c_[t, force], delimiter=",", fmt="%.4f", header="t_s,force_n",
               comments="")  # fmt: skip
    return path


def test_analyze_profile_lowers_the_limit_and_the_default_profile_applies(tmp_path, capsys):
    trace = _trace(tmp_path / "trace.csv")
    assert main(["analyze", str(trace), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["limit_n"] == 10.0 and report["summary"]["counts"]["stop"] == 0

    profile = write(tmp_path / "me.toml", "[zones.neck_back]\nlimit_n = 8\n")
    assert main(["analyze", str(trace), "--profile", str(profile), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["limit_n"] == 8.0
    assert report["summary"]["counts"]["over_limit"] == 1

    write(Path(os.environ["MASSAGECTL_CONFIG_DIR"]) / DEFAULT_PROFILE_NAME, profile.read_text())
    assert main(["analyze", str(trace), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["limit_n"] == 8.0


def test_analyze_profile_warns_when_capped_and_fails_in_one_line(tmp_path, capsys):
    trace = _trace(tmp_path / "trace.csv")
    high = write(tmp_path / "high.toml", "[zones.neck_back]\nlimit_n = 30\n")
    assert main(["analyze", str(trace), "--profile", str(high)]) == 0
    out, err = capsys.readouterr()
    assert "warning:" in err and "capped at 20 N" in err and str(high) in err
    assert "zone neck_back (limit 20 N)" in out

    bad = write(tmp_path / "bad.toml", "[zones.neck_back]\nlimt_n = 8\n")
    rc = main(["analyze", str(trace), "--profile", str(bad)])
    out, err = capsys.readouterr()
    assert rc != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "zones.neck_back.limt_n: unknown field" in lines[0]
    assert "Traceback" not in err


def test_analyze_refuses_a_profile_for_a_recording(tmp_path, capsys):
    from device.recording.folder import Recorder

    folder = tmp_path / "rec"
    Recorder.create(folder, {}).finish()
    profile = write(tmp_path / "me.toml", "[zones.neck_back]\nlimit_n = 8\n")
    rc = main(["analyze", str(folder), "--profile", str(profile)])
    _, err = capsys.readouterr()
    assert rc != 0 and "--profile" in err and "CSV traces" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[zones.neck_back]\nlimit_n = 1" + b"0" * 400 + b"\n",
         "zones.neck_back.limit_n: integer out of range"),
        (b"[zones.neck_back]\nlimit_n = " + b"[" * 2000 + b"]" * 2000 + b"\n", "nested too deep"),
        (b"# \xff\xfe\n[zones.neck_back]\nlimit_n = 8\n", "not UTF-8 text"),
    ],
)  # fmt: skip
def test_huge_deep_or_undecodable_profiles_are_one_line_errors(tmp_path, capsys, content, message):
    p = tmp_path / "bad.toml"
    p.write_bytes(content)
    with pytest.raises(InputFileError) as info:
        load_profile(p)
    assert str(info.value).startswith(f"{p}: ") and message in str(info.value)
    trace = tmp_path / "t.csv"
    trace.write_text("t_s,force_n\n0,1\n0.001,1\n")
    assert main(["analyze", str(trace), "--zone", "neck_back", "--profile", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
