"""A host process for deadman tests: connects, starts the motor, keeps streaming.

Prints ``VIBRATING`` once the device has acknowledged Vibrate. A test then stops (SIGSTOP) or
kills (SIGKILL) this process and watches the simulator turn the motor off by itself.
"""

from __future__ import annotations

import asyncio
import sys

from device.links import open_link
from device.session.device_session import DeviceSession
from tests.helpers import person_screening


async def main(url: str) -> None:
    async with DeviceSession(open_link(url)) as session:
        session.clear_for_vibration(person_screening())  # the test plays the person
        await session.set_limit(40.0)  # version 2: no vibration without a limit
        await session.vibrate(50.0, 100)
        print("VIBRATING", flush=True)
        async for _batch in session.batches():
            pass


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
