"""The fault matrix (tests/fault_matrix.py): every fault x {idle, streaming, vibrating, a hold
near the neck}, through the whole supervised run with a recording: vibration off within its
budget, the cause named, the run paused or ended as the policy says, the recording no more
than 1 s behind, nothing escaping.

CI runs a time-compressed short form on the serial framing in this process, on virtual time
(the fault 0.5 s in, watched for 1.3 s; every fault while vibrating and the cases where
another state shows something vibration does not). ``make test-long`` runs the whole matrix
on serial and on BLE (Bumble's software radio, real time at 2.5x). docs/reliability.md is
the table of both, written by docs/make_reliability.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulators.faults import FAULT_KINDS
from tests import fault_matrix as fm

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long" or bool(os.environ.get("MASSAGECTL_LONG"))
DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


def _id(case) -> str:
    kind, state = case
    return f"{kind}-{state.name.replace(' ', '_')}"


def _check(result: fm.Result) -> None:
    assert result.problems() == [], f"{result.fault}, {result.state}: {result.measured()}"


@pytest.mark.virtual_time
@pytest.mark.parametrize("case", fm.short_form(), ids=_id)
async def test_fault_matrix_short(case, tmp_path):
    kind, state = case
    _check(await fm.run_case(kind, state, at_s=0.5, watch_s=1.3, folder=tmp_path / "rec"))


def test_the_short_form_covers_every_fault_and_state():
    cases = fm.short_form()
    assert {k for k, _s in cases} == set(FAULT_KINDS)
    assert {s.name for _k, s in cases} == {s.name for s in fm.STATES}


@pytest.mark.skipif(not LONG, reason="the whole matrix: make test-long (or MASSAGECTL_LONG=1)")
@pytest.mark.virtual_time
@pytest.mark.parametrize("case", fm.all_cases(), ids=_id)
async def test_fault_matrix_serial_whole(case, tmp_path):
    kind, state = case
    _check(await fm.run_case(kind, state, folder=tmp_path / "rec"))


@pytest.mark.skipif(not LONG, reason="BLE in real time: make test-long (or MASSAGECTL_LONG=1)")
@pytest.mark.parametrize("case", fm.all_cases(), ids=_id)
async def test_fault_matrix_ble_whole(case, tmp_path):
    kind, state = case
    result = await fm.run_case(kind, state, transport="ble", folder=tmp_path / "rec")
    if result.expected is None:
        pytest.skip(f"{kind}: a BLE link cannot produce it (n/a)")
    _check(result)


def test_the_reliability_table_names_every_fault_and_state():
    """docs/reliability.md is generated (docs/make_reliability.py): regenerate it when a
    fault or a state is added."""
    text = DOC.read_text()
    for kind in FAULT_KINDS:
        for state in fm.STATES:
            spec = fm.fault_for(kind, 1.0)
            assert f"| {fm.describe_fault(spec)} | {state.name} |" in text, (kind, state.name)
