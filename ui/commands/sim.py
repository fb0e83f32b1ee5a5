"""``massagectl sim serial``: a simulated device on a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import signal
import sys

from device.errors import UsageError
from simulators.devices import DEVICES, make_firmware
from simulators.scenario import ScenarioError


def register(sub) -> None:
    p = sub.add_parser(
        "sim",
        help="run a simulated device on a real transport",
        description=(
            "Run a simulated device (its firmware and physics) on a real transport, so that "
            "any massagectl command can talk to it as to hardware."
        ),
    )
    kinds = p.add_subparsers(dest="transport", metavar="TRANSPORT", required=True)
    s = kinds.add_parser(
        "serial",
        help="serve on a pseudo-terminal; prints 'READY serial:///dev/pts/N'",
        description=(
            "Open a pseudo-terminal, print 'READY serial:///dev/pts/N' and serve the "
            "simulated device there until interrupted. Firmware events (motor off, deadman, "
            "limit tripped) are printed as 'EVENT t_s=...' lines in simulator time."
        ),
    )
    s.add_argument("--device", choices=sorted(DEVICES), default="ball", help="default: ball")
    s.add_argument("--scenario", metavar="FILE", help="scenario TOML (docs/scenarios.md)")
    s.add_argument(
        "--speed", type=float, default=1.0, metavar="K", help="run K times faster than real time"
    )
    s.add_argument("--quiet", action="store_true", help="do not print firmware events")
    s.set_defaults(func=run_serial)


async def run_serial(args) -> int:
    from simulators.pty_endpoint import PtyEndpoint
    from simulators.runtime import SimulatorRunner

    if args.speed <= 0:
        raise UsageError("--speed must be positive")
    try:
        firmware = make_firmware(args.device, args.scenario)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from exc

    def show(event) -> None:
        if not args.quiet:
            print(event.line(), flush=True)

    endpoint = PtyEndpoint()
    runner = SimulatorRunner(firmware, endpoint.write, speed=args.speed, on_event=show)
    endpoint.attach(runner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY serial://{endpoint.path}", flush=True)
    task = runner.start()
    try:
        await stop.wait()
    finally:
        await runner.stop()
        endpoint.close()
        if task.done() and not task.cancelled() and task.exception():
            raise task.exception()
    print(
        f"simulator stopped: {runner.frames_sent} frames sent, "
        f"{runner.frames_dropped} dropped (nobody reading)",
        file=sys.stderr,
    )
    return 0
