"""The reference C firmware core on this host: code size at -Os (``size`` of each object),
its static RAM, and the cost per sample and per command (firmware_bridge/c/bench/bench_core.c
at -Os). The README quotes these figures. Run: ``python -m benchmarks.bench_c_firmware``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from simulators.c_firmware import (
    C_DIR,
    INCLUDE_DIR,
    STRICT_FLAGS,
    build_tool,
    core_sources,
    find_cc,
)


def code_size() -> None:
    cc = find_cc()
    size = shutil.which("size")
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in core_sources():
            obj = Path(tmp) / (src.stem + ".o")
            subprocess.run(
                [cc, *STRICT_FLAGS, "-Os", "-c", "-I", str(INCLUDE_DIR), str(src), "-o", str(obj)],
                check=True,
            )
            if size is None:
                print(f"{src.name}: {obj.stat().st_size} bytes (object file; no `size` here)")
                continue
            out = subprocess.run([size, str(obj)], capture_output=True, text=True, check=True)
            text, data, bss = (int(v) for v in out.stdout.splitlines()[1].split()[:3])
            total += text
            print(f"{src.name}: text {text} B, data {data} B, bss {bss} B")
    if size is not None:
        print(f"core code at -Os on this host ({cc}): {total} bytes of text")


def main() -> int:
    code_size()
    binary = build_tool("bench_core", [*core_sources(), C_DIR / "bench" / "bench_core.c"], ("-Os",))
    n = sys.argv[1] if len(sys.argv) > 1 else "2000000"
    subprocess.run([str(binary), n], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
