"""The reference C firmware (firmware_bridge/c): its own tests and a short fuzz run under the
sanitizers, the portability rules of its core, the build cache and the missing-compiler
error, and the neck routine run back to back on the Python and the C firmware."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from device.errors import BadUrlError
from device.links import open_link
from device.routine.routines import load_routine, parse_routine
from device.routine.runner import RoutineRunner
from device.session.device_session import DeviceSession
from device.urls import parse_url
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from simulators import c_firmware
from simulators.c_firmware import (
    C_DIR,
    INCLUDE_DIR,
    SANITIZE_FLAGS,
    CFirmwareError,
    build_tool,
    core_sources,
)
from tests import c_vectors
from tests.helpers import MASSAGECTL
from tests.test_routine_cli import ONE_SQUEEZE
from tests.virtual_time import run_virtual

#: Frames of the fuzz run in CI (a few seconds); benchmarks/fuzz_c_firmware.py runs 10 million.
CI_FUZZ_FRAMES = 200_000
ALLOWED_HEADERS = {"stdint.h", "stddef.h", "stdbool.h", "limits.h", "string.h"}


def test_the_c_tests_pass_under_the_sanitizers(tmp_path):
    vectors = c_vectors.write(tmp_path / "vectors.c")
    binary = build_tool(
        "test_core",
        [*core_sources(), C_DIR / "tests" / "test_core.c", vectors],
        (*SANITIZE_FLAGS, "-I", str(C_DIR / "tests")),
    )
    done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^C TESTS OK \d+ checks$", done.stdout, re.M), done.stdout
    assert "runtime error" not in done.stderr  # UBSan


def test_a_short_fuzz_run_of_the_c_decoder_under_the_sanitizers():
    binary = build_tool(
        "fuzz_decoder", [*core_sources(), C_DIR / "fuzz" / "fuzz_decoder.c"], SANITIZE_FLAGS
    )
    done = subprocess.run(
        [str(binary), str(CI_FUZZ_FRAMES), "7"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    m = re.search(r"^FUZZ OK (\d+) frames, (\d+) messages decoded, (\d+) replies", done.stdout)
    assert m and int(m.group(1)) == CI_FUZZ_FRAMES, done.stdout
    assert int(m.group(2)) > 1000 and int(m.group(3)) > 1000  # it got past the CRC


@pytest.mark.parametrize("source", core_sources(), ids=lambda p: p.name)
def test_each_core_file_compiles_alone_with_freestanding_headers_only(source, tmp_path):
    cc = c_firmware.find_cc()
    done = subprocess.run(
        [cc, "-std=c99", "-Os", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c"]
        + ["-I", str(INCLUDE_DIR), str(source), "-o", str(tmp_path / "x.o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for path in [source, *INCLUDE_DIR.glob("*.h")]:
        text = path.read_text()
        system = set(re.findall(r"#include <([^>]+)>", text))
        assert system <= ALLOWED_HEADERS, (path.name, system - ALLOWED_HEADERS)
        assert not re.search(r"\b(malloc|calloc|realloc|free|printf)\s*\(", text), path.name


def test_the_build_is_cached_by_source_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("MASSAGECTL_CFW_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "extra.c"
    src.write_text("int mb_extra(void) { return 1; }\n")
    first = build_tool("libextra", [*core_sources(), src], ("-O2",), shared=True)
    stamp = first.stat().st_mtime_ns
    assert build_tool("libextra", [*core_sources(), src], ("-O2",), shared=True) == first
    assert first.stat().st_mtime_ns == stamp  # not rebuilt
    src.write_text("int mb_extra(void) { return 2; }\n")
    second = build_tool("libextra", [*core_sources(), src], ("-O2",), shared=True)
    assert second != first and second.exists()


def test_no_compiler_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MASSAGECTL_CFW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(CFirmwareError, match="needs a C compiler.*no-such-cc"):
        build_tool("libmbcore", core_sources(), ("-O2",), shared=True)
    # the command line: exit 2, one line, no traceback
    env = {**os.environ, "CC": "no-such-cc", "MASSAGECTL_CFW_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [MASSAGECTL, "sim", "serial", "--firmware", "c"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs a C compiler" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_sim_url_takes_the_firmware():
    assert parse_url("sim://ball?firmware=c").params["firmware"] == "c"
    assert parse_url("sim://handheld?firmware=python").params["firmware"] == "python"
    with pytest.raises(BadUrlError, match="firmware= is one of python, c"):
        parse_url("sim://ball?firmware=rust")


# ---- back to back: the neck routine on both firmwares --------------------------------------


async def _neck_relief(firmware: str, routine=None) -> dict:
    link = open_link(f"sim://ball?user=scripted&firmware={firmware}", speed=10.0)
    async with DeviceSession(link) as session:
        pipeline = ForcePipeline(session.rate_hz, session.calibration, get_zone(None))
        routine = routine or load_routine("neck-relief")
        runner = RoutineRunner(session, routine, pipeline, unattended=True)
        summary = await runner.run()
        assert type(link.firmware).__name__ == ("CFirmware" if firmware == "c" else "Firmware")
    return summary.to_dict()


def test_a_short_routine_gives_the_same_holds_and_stop_on_both_firmwares():
    """The short form of the next test (make test): one squeeze with the scripted over-press."""
    routine = parse_routine(ONE_SQUEEZE, "one-squeeze")
    runs = {fw: run_virtual(_neck_relief(fw, routine)) for fw in ("python", "c")}
    units = {fw: run["units"] for fw, run in runs.items()}
    holds = {fw: [h for u in units[fw] for h in u["holds"]] for fw in runs}
    assert len(holds["python"]) == len(holds["c"]) >= 1
    for a, b in zip(holds["python"], holds["c"], strict=True):
        assert abs(a["duration_s"] - b["duration_s"]) <= 0.010, (a, b)
    stops = {fw: [(u["label"], s["cause"]) for u in units[fw] for s in u["stops"]] for fw in runs}
    assert stops["python"] == stops["c"]
    assert [c for _, c in stops["c"]] == ["over_limit"]
    assert runs["python"]["end"] == runs["c"]["end"]


@pytest.mark.long
def test_the_neck_routine_gives_the_same_holds_and_stop_on_both_firmwares():
    runs = {fw: run_virtual(_neck_relief(fw)) for fw in ("python", "c")}
    units = {fw: run["units"] for fw, run in runs.items()}
    assert [u["label"] for u in units["python"]] == [u["label"] for u in units["c"]]
    holds = {fw: [h for u in units[fw] for h in u["holds"]] for fw in runs}
    assert len(holds["python"]) == len(holds["c"]) >= 16
    for a, b in zip(holds["python"], holds["c"], strict=True):
        assert abs(a["duration_s"] - b["duration_s"]) <= 0.010, (a, b)
    stops = {fw: [(u["label"], s["cause"]) for u in units[fw] for s in u["stops"]] for fw in runs}
    assert stops["python"] == stops["c"]
    assert [c for _, c in stops["c"]] == ["over_limit"]
    for key in ("completed", "restarts"):
        assert [u[key] for u in units["python"]] == [u[key] for u in units["c"]], key
    assert runs["python"]["end"] == runs["c"]["end"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
