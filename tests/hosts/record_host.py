"""A host process for crash tests: streams a simulated ball into a recording until killed.

Usage: ``python -m tests.hosts.record_host URL DIR``. Prints ``RECORDING`` once the recording
folder exists, then ``AT <t_s>`` (device time of the last batch received) about every 0.1 s of
device time. A test SIGKILLs it and checks what the folder kept.
"""

from __future__ import annotations

import asyncio
import sys

from device.control.run import supervised_run


async def main(url: str, folder: str) -> None:
    async with supervised_run(url, vibrates=False, record_dir=folder) as run:
        print("RECORDING", flush=True)
        next_print_s = 0.0

        def on_batch(batch, _result) -> None:
            nonlocal next_print_s
            t_s = float(batch.t_s[-1])
            if t_s >= next_print_s:
                print(f"AT {t_s:.4f}", flush=True)
                next_print_s = t_s + 0.1

        run.live.add_batch_listener(on_batch)
        run.watch_step("stream")
        while run.live.failure is None and run.live.link_error is None:
            run.live.changed.clear()
            await run.live.changed.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
