"""A host process for crash tests: streams a simulated ball into a recording until killed.

Usage: ``python -m tests.hosts.record_host URL DIR``. Prints ``RECORDING`` once the recording
folder exists, then ``AT <t_s>`` (device time of the last batch received) about every 0.1 s of
device time. A test SIGKILLs it and checks what the folder kept.
"""

from __future__ import annotations

import asyncio
import sys

from device.control.pipeline_factory import live_pipeline
from device.links import open_link
from device.recording.folder import stream_recording
from device.session.device_session import DeviceSession


async def main(url: str, folder: str) -> None:
    async with (
        DeviceSession(open_link(url)) as session,
        stream_recording(folder, session, live_pipeline(session)) as recording,
    ):
        print("RECORDING", flush=True)
        next_print_s = 0.0
        async for batch in session.batches():
            recording.on_batch(batch)
            t_s = float(batch.t_s[-1])
            if t_s >= next_print_s:
                print(f"AT {t_s:.4f}", flush=True)
                next_print_s = t_s + 0.1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
