"""What the link carries for a whole routine: host commands and bytes per minute with patterns
played by the firmware (a protocol version 3 device) and streamed by the host (a device that
reports version 2), on the Python and on the C firmware.

The neck routine runs unattended on ``sim://ball?user=scripted`` (the scripted person, with
its over-press) on a virtual-time loop, so the figures do not depend on the machine. Bytes are
message bytes (header + payload: one BLE ATT value each; a serial frame adds 4 to 5 bytes of
CRC, COBS and delimiter). Keepalives are counted apart from commands (10 a second whichever
way the pattern is played).

    .venv/bin/python -m benchmarks.bench_patterns [routine-name]
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

from device.links import open_link
from device.routine.routines import Routine, load_routine
from device.routine.runner import RoutineRunner
from device.session.device_session import DeviceSession
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from firmware_bridge.messages import ForceBatch, Keepalive, Message, encode_message


@dataclass
class LinkTally:
    """Messages and bytes each way, by type."""

    sent: Counter = field(default_factory=Counter)
    sent_bytes: Counter = field(default_factory=Counter)
    received: Counter = field(default_factory=Counter)
    received_bytes: Counter = field(default_factory=Counter)

    def on_sent(self, msg: Message) -> None:
        self.sent[type(msg).__name__] += 1
        self.sent_bytes[type(msg).__name__] += len(encode_message(msg))

    def on_received(self, msg: Message) -> None:
        self.received[type(msg).__name__] += 1
        self.received_bytes[type(msg).__name__] += len(encode_message(msg))

    @property
    def commands(self) -> int:
        """Host -> device messages but keepalives (retries included)."""
        return sum(n for name, n in self.sent.items() if name != Keepalive.__name__)

    @property
    def command_bytes(self) -> int:
        return sum(n for name, n in self.sent_bytes.items() if name != Keepalive.__name__)

    @property
    def replies_and_status_bytes(self) -> int:
        """Device -> host bytes but force batches (Ack, Nack, Status, DeviceInfo)."""
        return sum(n for name, n in self.received_bytes.items() if name != ForceBatch.__name__)


def tally_link(link) -> LinkTally:
    """Count every message ``link`` sends and delivers from now on."""
    tally = LinkTally()
    send, deliver = link.send, link._deliver

    async def counted_send(msg: Message) -> None:
        tally.on_sent(msg)
        await send(msg)

    def counted_deliver(msg: Message) -> None:
        tally.on_received(msg)
        deliver(msg)

    link.send = counted_send
    link._deliver = counted_deliver
    return tally


async def run_routine(
    firmware: str = "python", protocol: int = 3, routine: Routine | None = None
) -> tuple[dict, LinkTally, float]:
    """The routine (the neck routine unless given) run unattended on the scripted ball:
    its summary, the link's tally and the device seconds it took."""
    url = f"sim://ball?user=scripted&firmware={firmware}&protocol={protocol}"
    link = open_link(url, speed=10.0)
    tally = tally_link(link)
    async with DeviceSession(link) as session:
        pipeline = ForcePipeline(session.rate_hz, session.calibration, get_zone(None))
        runner = RoutineRunner(
            session, routine or load_routine("neck-relief"), pipeline, unattended=True
        )
        t0_s = session.timebase.now_s()
        summary = await runner.run()
        duration_s = session.timebase.now_s() - t0_s
    return summary.to_dict(), tally, duration_s


def main(argv: list[str]) -> int:
    sys.path.insert(0, ".")
    from tests.virtual_time import run_virtual

    routine = load_routine(argv[0]) if argv else load_routine("neck-relief")
    print(f"{routine.name} on sim://ball?user=scripted (virtual time)")
    print(
        f"{'firmware':8} {'protocol':8} {'minutes':>7} {'commands':>8} {'cmd/min':>8} "
        f"{'cmd B/min':>9} {'reply+status B/min':>18} {'keepalive/min':>13}  commands by type"
    )
    for firmware in ("python", "c"):
        for protocol in (2, 3):
            _summary, tally, duration_s = run_virtual(run_routine(firmware, protocol, routine))
            minutes = duration_s / 60.0
            by_type = ", ".join(
                f"{name} {n}" for name, n in tally.sent.most_common() if name != "Keepalive"
            )
            print(
                f"{firmware:8} {protocol:8} {minutes:7.2f} {tally.commands:8d} "
                f"{tally.commands / minutes:8.1f} {tally.command_bytes / minutes:9.0f} "
                f"{tally.replies_and_status_bytes / minutes:18.0f} "
                f"{tally.sent['Keepalive'] / minutes:13.0f}  {by_type}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
