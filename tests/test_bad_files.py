"""Issue 14, "bad files": every file massagectl reads, fed arbitrary bytes and arbitrary
structured TOML/JSON (valid documents with parts replaced by anything: 400-digit integers,
NaN, strings for numbers, lists for tables, deep nesting), raises nothing but the project's
own error for that file, and what it accepts can be used without a crash.

Parsers covered: routines, profiles, scenarios, screening answers, known devices, recordings
(session.json, samples.csv, events.jsonl), force-trace CSV, DeviceInfo and ForceBatch
decoding with the host's checks. The CI profile runs a few dozen examples per property;
``make test-long`` (HYPOTHESIS_PROFILE=long) runs 2,000.
"""

from __future__ import annotations

import copy
import json
import math
import os
import struct
import tempfile
import tomllib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.config.known_devices import KnownDevice, KnownDevices, KnownDevicesError
from device.config.profiles import load_profile
from device.errors import DeviceDataError, InputFileError, MassagectlError, RoutineError
from device.recording.folder import RecordingWarning, read_recording
from device.recording.trace_io import read_force_csv
from device.routine.routines import Side, builtin_text, fill_instruction, load_routine
from device.routine.timeline import analyze_recording
from device.screening.gate import (
    ScreeningRefused,
    evaluate,
    load_answers_file,
    simulated_user_answers,
)
from device.session.device_session import check_device_info, check_force_batch
from dsp.calibration import Calibration
from dsp.events import Cause as C
from dsp.events import Fault, HoldEnded, HoldStarted, StepStarted, Stop
from firmware_bridge.framing import encode_frame
from firmware_bridge.messages import (
    PROTOCOL_VERSION,
    DeviceInfo,
    ForceBatch,
    ProtocolError,
    decode_message,
)
from simulators.devices import make_firmware
from simulators.runtime import SimulatorRunner
from simulators.scenario import ScenarioError, load_scenario

#: Examples per property: few in CI (the suite stays fast), the profile's own otherwise.
_CI = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci"
FUZZ = settings(
    max_examples=25 if _CI else settings.default.max_examples,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---- values and documents ------------------------------------------------------------------

_SPECIAL_INTS = st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**400])
_SPECIAL_TEXT = st.sampled_from(
    ["", "{side:d}", "{side}", "{", "neck_back", "tare", "F3:4D:42:41:4C:4C", "1", "nan"]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | _SPECIAL_INTS
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | _SPECIAL_TEXT
)
VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8) | _SPECIAL_TEXT, inner, max_size=3)
    ),
    max_leaves=6,
)


#: Stands for an array nested 2000 deep: emitted as text by ``to_toml`` and ``to_json``
#: (building it as Python lists would overflow the emitters' own recursion).
DEEP = "\x00deep\x00"
_DEEP_TEXT = "[" * 2000 + "1" + "]" * 2000


def _deepen(text: str) -> str:
    return text.replace(json.dumps(DEEP), _DEEP_TEXT)


@st.composite
def mutated(draw, base: Any) -> Any:
    """``base`` with one to three parts replaced, deleted, added or nested 2000 deep."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        doc = _mutate(draw, doc, 0)
    return doc


def _mutate(draw, node: Any, depth: int) -> Any:
    if isinstance(node, dict | list) and node and depth < 8 and draw(st.integers(0, 4)) > 0:
        keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["descend", "descend", "descend", "replace", "delete"]))
        if action == "descend":
            node[key] = _mutate(draw, node[key], depth + 1)
        elif action == "replace":
            node[key] = draw(VALUES)
        else:
            del node[key]
        return node
    if isinstance(node, dict) and draw(st.booleans()):
        node[draw(st.text(max_size=8) | _SPECIAL_TEXT)] = draw(VALUES)
        return node
    if draw(st.integers(0, 20)) == 0:
        return DEEP
    return draw(VALUES)


def _toml_key(key: str) -> str:
    return (
        key
        if key and all(c.isalnum() and c.isascii() or c in "_-" for c in key)
        else (json.dumps(key))
    )


def _toml_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        items = [v for v in (_toml_value(x) for x in value) if v is not None]
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        pairs = [(k, _toml_value(v)) for k, v in value.items()]
        return (
            "{" + ", ".join(f"{_toml_key(str(k))} = {v}" for k, v in pairs if v is not None) + "}"
        )
    raise TypeError(value)


def to_toml(doc: Any) -> bytes:
    """TOML text for ``doc`` (None values left out; a non-table top level is a value)."""
    if not isinstance(doc, dict):
        return _deepen(f"value = {_toml_value(doc)}\n").encode("utf-8", "surrogatepass")
    lines = []
    for key, value in doc.items():
        text = _toml_value(value)
        if text is not None:
            lines.append(f"{_toml_key(str(key))} = {text}")
    return _deepen("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def to_json(doc: Any) -> bytes:
    return _deepen(json.dumps(doc)).encode("utf-8", "surrogatepass")


def _file(folder: str, name: str, content: bytes) -> Path:
    path = Path(folder) / name
    path.write_bytes(content)
    return path


# ---- routines ------------------------------------------------------------------------------

ROUTINE = tomllib.loads(builtin_text("neck-relief"))


def _check_routine(path: Path) -> None:
    try:
        routine = load_routine(path)
    except RoutineError:
        return
    for unit in routine.units():
        assert isinstance(unit.instruction, str) and unit.label
    for step in routine.steps:
        step.display_instruction()
        assert math.isfinite(step.approx_duration_s())


@FUZZ
@given(st.binary(max_size=300))
def test_routine_files_of_any_bytes(content):
    with tempfile.TemporaryDirectory() as d:
        _check_routine(_file(d, "r.toml", content))


@FUZZ
@given(mutated(ROUTINE))
def test_routine_files_of_any_structure(doc):
    with tempfile.TemporaryDirectory() as d:
        _check_routine(_file(d, "r.toml", to_toml(doc)))


@FUZZ
@given(st.text(max_size=30))
def test_an_instruction_that_loads_can_be_filled_for_every_side(instruction):
    doc = copy.deepcopy(ROUTINE)
    step = next(s for s in doc["steps"] if s.get("sides") == "both")
    step["instruction"] = instruction
    with tempfile.TemporaryDirectory() as d:
        path = _file(d, "r.toml", to_toml(doc))
        try:
            load_routine(path)
        except RoutineError:
            return
    for side in Side:
        fill_instruction(instruction, side)


# ---- profiles ------------------------------------------------------------------------------

PROFILE = {"zones": {"neck_back": {"limit_n": 8, "vibration_cap_pct": 20},
                     "upper_trapezius": {"limit_n": 30}}}  # fmt: skip


def _check_profile(path: Path) -> None:
    try:
        profile = load_profile(path)
    except InputFileError:
        return
    for zone in profile.zones.values():
        assert math.isfinite(zone.limit_n) and zone.limit_n > 0
    json.dumps(profile.to_meta(), allow_nan=False)
    try:
        load_routine("neck-relief", zones=profile.zones)
    except RoutineError:
        pass  # a lowered limit can make a built-in band too high: a clear refusal


@FUZZ
@given(st.binary(max_size=200))
def test_profiles_of_any_bytes(content):
    with tempfile.TemporaryDirectory() as d:
        _check_profile(_file(d, "p.toml", content))


@FUZZ
@given(mutated(PROFILE))
def test_profiles_of_any_structure(doc):
    with tempfile.TemporaryDirectory() as d:
        _check_profile(_file(d, "p.toml", to_toml(doc)))


# ---- scenarios -----------------------------------------------------------------------------

SCENARIO = {
    "name": "s",
    "repeat_s": 20.0,
    "seed": 1,
    "press": [{"t_s": 0.0, "force_n": 25.0, "ramp_s": 0.5}, {"t_s": 0.1, "force_n": 0.0}],
    "sensor": {"scale_counts_per_n": 1000.0, "offset_counts": 12000, "noise_n": 0.05,
               "drift_n_per_min": 0.1, "saturation_n": 300.0},
    "motor": {"leak_peak_n": 3.0, "detune_pct": 4.0, "spinup_s": 0.06, "brake_s": 0.04,
              "default_hz": 150, "load_slowdown_pct_per_n": 0.0},
    "clock": {"drift_ppm": 30.0, "start_us": 0},
    "battery": {"start_pct": 96.0, "idle_drain_pct_per_h": 4.0, "motor_drain_pct_per_h": 30.0},
    "fault": [
        {"kind": "clock_jump", "at_s": 0.0, "jump_s": -1.0},
        {"kind": "saturation", "at_s": 0.002, "for_s": 0.01},
        {"kind": "brownout", "at_s": 0.015, "ms": 3.0},
        {"kind": "corrupt", "at_s": 0.0, "pct": 50.0, "direction": "both"},
        {"kind": "stall", "at_s": 0.004, "ms": 5.0},
        {"kind": "motor_slow_stop", "brake_s": 0.5},
    ],
}  # fmt: skip


def _check_scenario(path: Path) -> None:
    from firmware_bridge.messages import Hello, SetStream, Vibrate

    try:
        scenario = load_scenario(path)
    except ScenarioError:
        return
    for device in ("ball", "handheld"):
        firmware = make_firmware(device, scenario)
        firmware.handle(Hello(seq=1), 0.0)
        firmware.handle(SetStream(seq=2, rate_hz=1000, samples_per_batch=10), 0.0)
        firmware.handle(Vibrate(seq=3, intensity_permille=500), 0.0)
        for k in range(1, 6):
            for msg in firmware.advance(k * 0.005):
                if isinstance(msg, ForceBatch):
                    msg.payload()  # encodes: raw counts fit the wire's i32
    # and on a framed stream, with its link faults
    clock = _StepClock()
    runner = SimulatorRunner(make_firmware("ball", scenario), lambda _b: True, clock=clock)
    runner.feed(encode_frame(Hello(seq=1)) + encode_frame(SetStream(seq=2, rate_hz=1000)))
    for k in range(1, 6):
        clock.t_s = k * 0.005
        runner.step()


class _StepClock:
    t_s = 0.0

    def now_s(self) -> float:
        return self.t_s

    def advance(self) -> float:
        return self.t_s


@FUZZ
@given(st.binary(max_size=200))
def test_scenarios_of_any_bytes(content):
    with tempfile.TemporaryDirectory() as d:
        _check_scenario(_file(d, "s.toml", content))


@FUZZ
@given(mutated(SCENARIO))
def test_scenarios_of_any_structure(doc):
    with tempfile.TemporaryDirectory() as d:
        _check_scenario(_file(d, "s.toml", to_toml(doc)))


# ---- screening answers ---------------------------------------------------------------------

ANSWERS = simulated_user_answers()


def _check_answers(path: Path) -> None:
    try:
        answers = load_answers_file(path)
    except ScreeningRefused:
        return
    evaluate(answers, source=str(path))


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([".toml", ".json", ".txt"]))
def test_answers_files_of_any_bytes(content, suffix):
    with tempfile.TemporaryDirectory() as d:
        _check_answers(_file(d, "a" + suffix, content))


@FUZZ
@given(mutated(ANSWERS), st.sampled_from([".toml", ".json"]))
def test_answers_files_of_any_structure(doc, suffix):
    with tempfile.TemporaryDirectory() as d:
        content = to_toml(doc) if suffix == ".toml" else to_json(doc)
        _check_answers(_file(d, "a" + suffix, content))


# ---- known devices -------------------------------------------------------------------------

KNOWN = {
    "version": 1,
    "host": {"address": "C0:11:22:33:44:55", "irk_hex": "00" * 16},
    "devices": [
        {"name": "MBALL", "address": "F3:4D:42:41:4C:4C", "model": "MBALL-1",
         "serial_number": "S1", "firmware": "1.2.0", "manufacturer": "",
         "calibration": {"scale_counts_per_n": 1000.0, "offset_counts": 12000.0, "how": "tare",
                         "when": "2025-01-01T00:00:00+00:00", "known_force_n": None},
         "bond": {"keys": {"ltk": {"value": "00"}}}, "bond_note": "", "paired_at": "",
         "backend": "os"},
    ],
}  # fmt: skip


def _check_known(folder: str, content: bytes) -> None:
    from device.config.known_devices import calibration_for

    store = KnownDevices(folder)
    store.path.write_bytes(content)
    try:
        devices = store.devices()
    except KnownDevicesError:
        assert store.path.read_bytes() == content  # never written over
        return
    for device in devices:
        if device.calibration is not None:
            cal = device.calibration.to_calibration()
            assert math.isfinite(cal.scale_counts_per_n) and cal.scale_counts_per_n != 0
        store.bond_keys(device.address)
    store.put(KnownDevice(name="NEW", address="11:22:33:44:55:66"))
    assert store.find("NEW") is not None
    calibration_for("ble://MBALL", store)


@FUZZ
@given(st.binary(max_size=200))
def test_known_devices_of_any_bytes(content):
    with tempfile.TemporaryDirectory() as d:
        _check_known(d, content)


@FUZZ
@given(mutated(KNOWN))
def test_known_devices_of_any_structure(doc):
    with tempfile.TemporaryDirectory() as d:
        _check_known(d, to_json(doc))


# ---- recordings ----------------------------------------------------------------------------

META = {
    "format": "massagectl-recording",
    "format_version": 1,
    "url": "sim://ball",
    "link_kind": "sim",
    "rate_hz": 1000,
    "samples_per_batch": 10,
    "started_at": "2025-01-01T00:00:00+00:00",
    "complete": True,
    "device": {"model": "MBALL-1", "firmware": "1.2.0", "serial_number": "S1",
               "protocol_version": 1, "rate_min_hz": 100, "rate_max_hz": 1000, "motor_kind": 1,
               "motor_freq_min_hz": 50, "motor_freq_max_hz": 250,
               "cal_scale_counts_per_n": 1000.0, "cal_offset_counts": 12000},
    "calibration": {"scale_counts_per_n": 1000.0, "offset_counts": 12000.0},
    "routine": {"name": "neck-relief", "origin": "builtin:neck-relief"},
    "summary": {"end": "completed", "message": "", "advice": "", "units": [
        {"label": "a left", "zone": "upper_trapezius", "limit_n": 40.0, "band_n": [15, 30],
         "started_t_s": 0.0, "ended_t_s": 0.05, "completed": True,
         "holds": [{"duration_s": 0.01}], "time_in_band_s": 0.0, "peak_n": 3.0,
         "stops": [{"cause": "over_limit", "t_s": 0.04}]}]},
}  # fmt: skip
EVENTS = [
    StepStarted(t_s=0.0, step="a", step_kind="press_and_hold", zone="upper_trapezius",
                limit_n=40.0, band_n=(15.0, 30.0), side="left", vibration_pct=0.0,
                pattern=None, motor_hz=None, hold_min_s=0.01, hold_max_s=0.02,
                release_s=2.0).to_dict(),
    HoldStarted(t_s=0.01, band_n=(15.0, 30.0)).to_dict(),
    HoldEnded(t_s=0.03, start_s=0.01, end_s=0.03, duration_s=0.02, reached_min=True).to_dict(),
    Stop(t_s=0.04, cause=C.OVER_LIMIT, force_n=45.0, limit_n=40.0, path="fast").to_dict(),
    Fault(t_s=0.045, cause=C.SEQ_GAP, missing_batches=2).to_dict(),
]  # fmt: skip
SAMPLES = [[k // 10, k * 0.001, k * 0.001, 12000 + 20 * k, 0.02 * k, 0.02 * k] for k in range(60)]
RECORDING = {"session.json": META, "events": EVENTS, "samples": SAMPLES}


def _write_recording(folder: Path, doc: Any, damage: bytes | None = None, which: str = "") -> None:
    folder.mkdir()
    parts = doc if isinstance(doc, dict) else {}
    meta, events, samples = (parts.get(k) for k in ("session.json", "events", "samples"))
    (folder / "session.json").write_bytes(to_json(meta))
    lines = events if isinstance(events, list) else [events]
    (folder / "events.jsonl").write_bytes(b"".join(to_json(e) + b"\n" for e in lines))
    rows = samples if isinstance(samples, list) else [samples]
    text = "seq,t_s,t_host_s,raw_counts,force_n,filtered_n\n" + "".join(
        ",".join(str(v) for v in (row if isinstance(row, list) else [row])) + "\n" for row in rows
    )
    (folder / "samples.csv").write_bytes(text.encode("utf-8", "surrogatepass"))
    if damage is not None:
        (folder / which).write_bytes(damage)


def _check_recording(folder: Path) -> None:
    from device.links.replay import ReplayLink
    from device.urls import parse_url
    from ui.commands.report import build_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordingWarning)
        try:
            rec = read_recording(folder)
        except InputFileError:
            return
    try:
        analysis = analyze_recording(rec)
    except InputFileError:
        return  # too few samples: a clear error
    build_report(rec, analysis)
    for c in rec.batch_bounds()[:-1][:5].tolist():  # the batches replay:// would send
        t_us = int(np.round(rec.t_s[c] * 1e6)) % 2**32
        ForceBatch(seq=int(rec.seq[c]) & 0xFFFF, t_us=t_us, rate_hz=1000,
                   samples=tuple(rec.raw_counts[c : c + 10].tolist())).payload()  # fmt: skip
    link = ReplayLink(parse_url(f"replay://{folder}"))
    link.recording = rec
    try:
        check_device_info(link._device_info(), link.url)
    except DeviceDataError:
        pass


@FUZZ
@given(mutated(RECORDING))
def test_recordings_of_any_structure(doc):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "rec"
        _write_recording(folder, doc)
        _check_recording(folder)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["session.json", "events.jsonl", "samples.csv"]))
def test_recordings_with_a_file_of_any_bytes(content, which):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "rec"
        _write_recording(folder, RECORDING, content, which)
        _check_recording(folder)


# ---- force-trace CSV -----------------------------------------------------------------------


def _check_trace(path: Path) -> None:
    from ui.cli import main

    try:
        trace = read_force_csv(path)
    except InputFileError:
        return
    assert np.all(np.isfinite(trace.t_s)) and np.all(np.diff(trace.t_s) > 0)
    assert main(["analyze", str(path), "--zone", "upper_trapezius", "--json"]) in (0, 2)


_CELLS = st.sampled_from(["0", "1", "0.001", "-1", "nan", "inf", "1e308", "1e-320", "x", ""])


@FUZZ
@given(st.binary(max_size=200))
def test_trace_csv_of_any_bytes(content):
    with tempfile.TemporaryDirectory() as d:
        _check_trace(_file(d, "t.csv", content))


@FUZZ
@given(st.lists(st.lists(_CELLS | st.text(max_size=5), min_size=1, max_size=3), max_size=6))
def test_trace_csv_of_any_rows(rows):
    text = "t_s,force_n\n" + "".join(",".join(row) + "\n" for row in rows)
    with tempfile.TemporaryDirectory() as d:
        _check_trace(_file(d, "t.csv", text.encode("utf-8", "surrogatepass")))


# ---- DeviceInfo and ForceBatch, decoded and checked by the host ----------------------------


def _check_message(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except ProtocolError:
        return
    if isinstance(msg, DeviceInfo):
        try:
            check_device_info(msg, "test://")
        except DeviceDataError:
            return
        cal = Calibration(msg.cal_scale_counts_per_n, msg.cal_offset_counts)
        assert math.isfinite(cal.scale_counts_per_n) and cal.scale_counts_per_n != 0
    elif isinstance(msg, ForceBatch):
        try:
            check_force_batch(msg, "test://")
        except DeviceDataError:
            return
        assert msg.rate_hz > 0


_HEADER = struct.Struct("<BBH")


@FUZZ
@given(st.sampled_from([0x81, 0x82]), st.binary(max_size=90))
def test_device_info_and_force_batch_of_any_payload(mtype, payload):
    _check_message(_HEADER.pack(PROTOCOL_VERSION, mtype, 7) + payload)


@FUZZ
@given(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.integers(0, 65535),
)
def test_device_info_and_force_batch_of_any_values(scale, rate_min, rate_max, batch_rate):
    info = DeviceInfo(seq=1, rate_min_hz=rate_min, rate_max_hz=rate_max,
                      cal_scale_counts_per_n=scale)  # fmt: skip
    _check_message(_HEADER.pack(PROTOCOL_VERSION, 0x81, 1) + info.payload())
    batch = ForceBatch(seq=2, t_us=0, rate_hz=batch_rate, samples=(1, 2, 3))
    _check_message(_HEADER.pack(PROTOCOL_VERSION, 0x82, 2) + batch.payload())


def test_every_error_above_is_the_projects_own():
    """The error types the properties allow are all MassagectlError (what the CLI turns into
    one line and exit 2), except the simulator's own ScenarioError (simulators import
    nothing of device/; the sim:// link and `sim` commands turn it into a UsageError)."""
    for error in (InputFileError, RoutineError, KnownDevicesError, ScreeningRefused,
                  DeviceDataError):  # fmt: skip
        assert issubclass(error, MassagectlError)
    assert issubclass(ScenarioError, ValueError)


# ---- files that cannot be read (injected: tests run as root, so no chmod) ------------------


def test_an_unreadable_file_is_one_error_of_its_kind(tmp_path, monkeypatch):
    import errno

    routine = _file(str(tmp_path), "r.toml", builtin_text("neck-relief").encode())
    profile = _file(str(tmp_path), "p.toml", to_toml(PROFILE))
    scenario = _file(str(tmp_path), "s.toml", to_toml(SCENARIO))
    answers = _file(str(tmp_path), "a.json", to_json(ANSWERS))
    trace = _file(str(tmp_path), "t.csv", b"t_s,force_n\n0,1\n0.001,1\n")
    recording = tmp_path / "rec"
    _write_recording(recording, RECORDING)

    def denied(*_args, **_kw):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(Path, "read_bytes", denied)
    monkeypatch.setattr(Path, "read_text", denied)
    monkeypatch.setattr(Path, "open", denied)
    cases = [
        (lambda: load_routine(routine), RoutineError),
        (lambda: load_profile(profile), InputFileError),
        (lambda: load_scenario(scenario), ScenarioError),
        (lambda: load_answers_file(answers), ScreeningRefused),
        (lambda: read_force_csv(trace), InputFileError),
        (lambda: read_recording(recording), InputFileError),
    ]
    for load, error in cases:
        try:
            load()
        except error as exc:
            assert "Permission denied" in str(exc) and "\n" not in str(exc), exc
        else:
            raise AssertionError(f"{load}: no error")
