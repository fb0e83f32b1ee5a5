"""Ten million random and mutated frames through the C decoder and core, under
AddressSanitizer and UndefinedBehaviorSanitizer (firmware_bridge/c/fuzz/fuzz_decoder.c).
Prints the count; exits non-zero on any crash, out-of-bounds access or undefined behaviour.
CI runs 200,000 of them (tests/test_c_firmware.py). Run:
``python -m benchmarks.fuzz_c_firmware [FRAMES [SEED]]``."""

from __future__ import annotations

import subprocess
import sys
import time

from simulators.c_firmware import C_DIR, SANITIZE_FLAGS, build_tool, core_sources


def main() -> int:
    frames = sys.argv[1] if len(sys.argv) > 1 else "10000000"
    seed = sys.argv[2] if len(sys.argv) > 2 else "1"
    binary = build_tool(
        "fuzz_decoder", [*core_sources(), C_DIR / "fuzz" / "fuzz_decoder.c"], SANITIZE_FLAGS
    )
    t0 = time.monotonic()
    done = subprocess.run([str(binary), frames, seed])
    print(f"({time.monotonic() - t0:.1f} s, sanitizers: address, undefined)")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
