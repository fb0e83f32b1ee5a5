"""``massagectl sim serial``: a simulated device on a real pseudo-terminal.
``massagectl sim ble``: the simulated ball (or a force sensor: ``--device``) as a BLE
peripheral on a software radio."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import replace

from device.errors import LinkError, UsageError
from device.urls import MAX_SIM_SPEED, check_sim_speed
from simulators.c_firmware import CFirmwareError
from simulators.devices import DEVICES, FIRMWARES, make_firmware
from simulators.faults import DEVICE_KINDS, FaultSpecError, parse_fault_flag
from simulators.firmware import Firmware
from simulators.scenario import ScenarioError, load_scenario
from simulators.sensors import SENSORS, SensorSim, make_sensor

FAULT_HELP = (
    "inject a fault, KIND[@AT_S][:FIELD=VALUE,...] (e.g. corrupt@5:pct=2,for_s=10 or "
    "disconnect@30); repeat for more; added to the scenario's [[fault]] tables "
    "(docs/scenarios.md)"
)


def _firmware(device: str, args, *, ble: bool = False):
    """The firmware for ``device`` with the scenario and the ``--fault`` flags (one clear
    UsageError for a bad file or flag, or a fault the transport cannot produce)."""
    try:
        scenario = load_scenario(args.scenario)
        if ble and args.scenario is None:  # the default ball rests first: time to pair
            scenario = replace(scenario, start_s=SIM_BLE_REST_S)
        flags = tuple(parse_fault_flag(text) for text in args.fault or ())
    except (ScenarioError, FaultSpecError) as exc:
        raise UsageError(str(exc)) from exc
    faults = scenario.faults + flags
    if ble:
        for f in faults:
            if f.kind not in DEVICE_KINDS and f.kind != "disconnect":
                raise UsageError(
                    f"fault {f.kind}: not on BLE (its link layer checks, orders and "
                    "retransmits every packet); BLE takes disconnect and the device faults: "
                    + ", ".join(DEVICE_KINDS)
                )
    try:
        return make_firmware(
            device,
            replace(scenario, faults=faults),
            rate_hz=getattr(args, "rate", None),
            firmware=args.firmware,
        )
    except (ScenarioError, CFirmwareError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


def _add_run_options(p) -> None:
    """What both simulators take: ``--speed``, ``--fault``, ``--quiet``."""
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="K",
        help=f"run K times faster than real time (at most {MAX_SIM_SPEED:g})",
    )
    p.add_argument("--fault", action="append", metavar="SPEC", help=FAULT_HELP)
    p.add_argument("--quiet", action="store_true", help="do not print firmware events")


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
        "--rate",
        type=int,
        metavar="R",
        help=(
            "the one rate (10-2000 Hz) the simulated ADC runs at (DeviceInfo offers only R); "
            "an integrating ADC, like an HX711, at R <= 80 Hz"
        ),
    )
    s.add_argument(
        "--firmware",
        choices=FIRMWARES,
        default="python",
        help="the Python firmware or the reference C core (built with cc on first use); "
        "default: python",
    )
    _add_run_options(s)
    s.set_defaults(func=run_serial)
    _register_ble(kinds)


#: ``sim ble`` without --scenario: the default scenario, after this long at rest (simulator
#: seconds), so that a ``pair`` right after the simulator starts finds the ball unloaded.
SIM_BLE_REST_S = 30.0


def _register_ble(kinds) -> None:
    b = kinds.add_parser(
        "ble",
        help="serve the ball as a BLE peripheral on a software radio; prints 'READY hci=...'",
        description=(
            "Run a software Bluetooth radio: the simulated ball as a BLE GATT peripheral on "
            "one Bumble controller, and a second controller whose raw HCI is served on TCP "
            "for one host at a time. Prints 'READY hci=tcp-client:HOST:PORT'; give that to "
            "another massagectl with --hci (or MASSAGECTL_BLE=bumble:...). When a host "
            "connects or goes away, its links are dropped and the ball advertises again. "
            "Firmware events are printed as 'EVENT t_s=...' lines in simulator time."
        ),
    )
    b.add_argument(
        "--device",
        choices=("ball", *SENSORS),
        default="ball",
        help=(
            "the ball (default), or a force sensor from its public protocol: a Tindeq "
            "Progressor, a PitchSix Force Board (GATT peripherals) or a WH-C06 scale "
            "(advertising only); docs/devices.md"
        ),
    )
    b.add_argument(
        "--scenario",
        metavar="FILE",
        help=(
            "scenario TOML (docs/scenarios.md); default: the ball lies at rest for "
            f"{SIM_BLE_REST_S:g} s (time to pair it), then the default press-hold-release"
        ),
    )
    b.add_argument(
        "--firmware",
        choices=FIRMWARES,
        default="python",
        help="the Python firmware or the reference C core; default: python",
    )
    b.add_argument(
        "--hci",
        default="tcp-server:127.0.0.1:0",
        metavar="tcp-server:HOST:PORT",
        help="where to serve HCI (default tcp-server:127.0.0.1:0, 0 = any free port)",
    )
    _add_run_options(b)
    b.set_defaults(func=run_ble)


def _tcp_server_address(spec: str) -> tuple[str, int]:
    kind, _, rest = spec.partition(":")
    host, _, port = rest.rpartition(":")
    if kind != "tcp-server" or not host or not port.isdigit():
        raise UsageError(f"--hci {spec!r}: expected tcp-server:HOST:PORT (PORT may be 0)")
    return host, int(port)


async def run_ble(args) -> int:
    from simulators.ble_radio import SoftwareRadio

    check_sim_speed(args.speed)
    host, port = _tcp_server_address(args.hci)
    firmware: Firmware | SensorSim
    if args.device == "ball":
        firmware = _firmware("ball", args, ble=True)
    elif args.firmware != "python":
        raise UsageError(f"--firmware {args.firmware}: only the ball runs our firmware")
    elif args.fault:
        raise UsageError("--fault: fault injection is for the ball only")
    else:
        try:
            firmware = make_sensor(args.device, load_scenario(args.scenario))
        except ScenarioError as exc:
            raise UsageError(str(exc)) from exc

    def show(event) -> None:
        if not args.quiet:
            print(event.line(), flush=True)

    radio = SoftwareRadio(firmware, speed=args.speed, on_event=show)
    try:
        transport = await radio.start(host, port)
    except OSError as exc:
        await radio.stop()
        raise UsageError(f"--hci {args.hci}: cannot listen: {exc}") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if isinstance(firmware, SensorSim):
        print(f"sim ble: {firmware.name} at {radio.ball.address} ({args.device})", file=sys.stderr)
    else:
        for f in firmware.scenario.faults:
            if f.kind == "disconnect":
                # the radio drops the ball's links at AT_S, as a supervision timeout on air; the
                # ball advertises again and a host may reconnect
                loop.call_later(f.at_s / args.speed, radio.drop_ball_links)
    print(f"READY hci={transport}", flush=True)
    serving = loop.create_task(radio.serve_forever(), name="sim-ble")
    stopping = loop.create_task(stop.wait(), name="sim-ble-stop")
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        serving.cancel()
        await radio.stop()
        for task in (serving, stopping):
            try:
                await task  # a peripheral failure is raised here
            except asyncio.CancelledError:
                pass
    if radio.ball.failure is not None:
        raise radio.ball.failure
    ball = radio.ball
    print(
        f"simulator stopped: {radio.clients_served} hosts served, "
        f"{ball.notifications_sent} notifications sent, "
        f"{ball.notifications_dropped} dropped (nobody connected)",
        file=sys.stderr,
    )
    return 0


async def run_serial(args) -> int:
    from simulators.pty_endpoint import PtyEndpoint
    from simulators.runtime import SimulatorRunner

    check_sim_speed(args.speed)
    if args.rate is not None and not 10 <= args.rate <= 2000:
        raise UsageError(f"--rate must be 10-2000 Hz, got {args.rate}")
    firmware = _firmware(args.device, args)

    def show(event) -> None:
        if not args.quiet:
            print(event.line(), flush=True)

    endpoint = PtyEndpoint()
    # a ``disconnect`` fault closes the pseudo-terminal: the host's port fails as unplugged
    runner = SimulatorRunner(
        firmware, endpoint.write, speed=args.speed, on_event=show, on_disconnect=endpoint.close
    )
    endpoint.attach(runner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY serial://{endpoint.path}", flush=True)
    task = runner.start()
    stopping = loop.create_task(stop.wait(), name="sim-serial-stop")
    try:
        # Until asked to stop, or until the stepping task dies: a simulator that no longer
        # steps (and so no longer runs its deadman) must not go on looking alive.
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        failure = task.exception() if task.done() and not task.cancelled() else None
        await runner.stop()
        endpoint.close()
    if failure is not None:
        raise LinkError(f"the simulator stopped: {type(failure).__name__}: {failure}") from failure
    print(
        f"simulator stopped: {runner.frames_sent} frames sent, "
        f"{runner.frames_dropped} dropped (nobody reading)",
        file=sys.stderr,
    )
    return 0
