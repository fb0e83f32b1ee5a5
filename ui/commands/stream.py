"""``massagectl stream URL``: live force from a device."""

from __future__ import annotations

import json
import sys
import time

from device.control.pipeline_factory import live_pipeline
from device.recording.folder import check_record_folder
from device.session.device_session import DEFAULT_RATE_HZ, DEFAULT_SAMPLES_PER_BATCH
from device.session.reconnect import open_device_session
from dsp.pipeline import describe_rate
from firmware_bridge.messages import MAX_SAMPLES_PER_BATCH
from ui.battery import battery_text
from ui.link_notice import add_reconnect_option
from ui.session_setup import add_lsl_options, check_lsl_options
from ui.units import add_units_option, label, shown

#: The sample rates a device may advertise in DeviceInfo (the ball: 10-2000 Hz). The
#: device's own range is checked again at the handshake (the handheld stops at 1000 Hz).
RATE_MIN_HZ = 10
RATE_MAX_HZ = 2000


def register(sub) -> None:
    p = sub.add_parser(
        "stream",
        help="show live force from a device",
        description=(
            "Connect to a device, start streaming and show live force in newtons with the "
            "sample rate, batches, sequence gaps and CRC errors. With --json, print one JSON "
            "object per batch: seq, t_s (device time of the first sample, seconds), "
            "t_host_s, gap and force_n (a list)."
        ),
    )
    p.add_argument(
        "url", metavar="URL", help="device URL, e.g. serial:///dev/ttyACM0 or sim://ball"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per batch on stdout")
    add_units_option(p)
    p.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds of device time"
    )
    p.add_argument(
        "--rate",
        type=int,
        default=None,
        metavar="HZ",
        help=(
            f"sample rate, {RATE_MIN_HZ}-{RATE_MAX_HZ} Hz and within what the device "
            f"advertises (default {DEFAULT_RATE_HZ}, or the nearest the device offers)"
        ),
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="N",
        help=(
            f"samples per batch, 1-{MAX_SAMPLES_PER_BATCH} (default "
            f"{DEFAULT_SAMPLES_PER_BATCH}, at most 20 ms of samples; ble:// may carry fewer)"
        ),
    )
    p.add_argument(
        "--hci",
        metavar="TRANSPORT",
        help=(
            "ble:// only: use the Bumble backend on this HCI transport, e.g. "
            "tcp-client:127.0.0.1:PORT from 'massagectl sim ble', or usb:0 "
            "(same as MASSAGECTL_BLE=bumble:TRANSPORT, and wins over it)"
        ),
    )
    p.add_argument(
        "--record",
        metavar="DIR",
        help=(
            "record to DIR (a new or empty folder): samples, events (neck_back limits) and "
            "session info; see docs/recording.md"
        ),
    )
    add_lsl_options(p)
    add_reconnect_option(p, gives_up=None)
    p.set_defaults(func=run)


class _Meter:
    """What ``stream`` prints: a header, one line per batch (JSON) or a running figure line
    (a terminal: redrawn 10 times a second; a pipe: once a second), and the counts."""

    def __init__(self, args) -> None:
        self.units = getattr(args, "units", "N")
        self.json = args.json
        self.tty = sys.stdout.isatty() and not args.json
        self.t0_host = time.monotonic()
        self.last_print = 0.0

    def header(self, session) -> None:
        if not self.json:
            info = session.info
            print(
                f"{info.model} fw {info.firmware} sn {info.serial_number} via "
                f"{session.link.kind}; "
                "Ctrl-C to stop",
                file=sys.stderr,
            )
        # on stderr in both modes: stdout stays one JSON object per batch
        print(
            f"{describe_rate(session.rate_hz)}; {session.samples_per_batch} sample(s) per batch",
            file=sys.stderr,
        )

    def show(self, session, batch, force_n) -> None:
        if self.json:
            print(
                json.dumps(
                    {
                        "seq": batch.seq,
                        "t_s": round(float(batch.t_s[0]), 6),
                        "t_host_s": round(batch.t_host_s - self.t0_host, 6),
                        "gap": batch.gap,
                        "force_n": [round(float(f), 4) for f in force_n],
                    }
                ),
                flush=False,
            )
            return
        now = time.monotonic()
        if now - self.last_print >= (0.1 if self.tty else 1.0):
            self.last_print = now
            text = self.line(session, batch, force_n)
            print("\r" + text if self.tty else text, end="" if self.tty else "\n", flush=True)

    def line(self, session, batch, force_n) -> str:
        c = session.counters
        stats = session.link.stats
        elapsed = max(1e-9, batch.t_s[-1])
        rate = c.samples / elapsed if c.samples > len(batch.t_s) else batch.rate_hz
        battery = battery_text(session.status.battery_pct if session.status else None)
        return (
            f"t {batch.t_s[-1]:7.2f} s  "
            f"force {shown(float(force_n.mean()), self.units):7.2f} {label(self.units)}  "
            f"rate {rate:6.0f} Hz  batches {c.batches}  gaps {c.missed_batches}  "
            f"crc {stats.crc_errors}  battery {battery}"
        )

    def footer(self, session) -> None:
        if self.json:
            sys.stdout.flush()
        elif self.tty:
            print()
        c = session.counters
        print(
            f"{c.batches} batches, {c.samples} samples, {c.missed_batches} missed, "
            f"{session.link.stats.crc_errors} CRC errors"
            + (f", {session.reconnects} reconnect(s)" if hasattr(session, "reconnects") else ""),
            file=sys.stderr,
        )


def _link_options(args) -> dict:
    """Transport options from the command line (``--hci`` goes to ble:// links only)."""
    from device.errors import UsageError
    from device.urls import parse_url

    if getattr(args, "hci", None) is None:
        return {}
    if parse_url(args.url).scheme != "ble":
        raise UsageError("--hci applies to ble:// URLs only")
    return {"hci": args.hci}


async def run(args) -> int:
    from device.errors import UsageError

    if args.rate is not None and not RATE_MIN_HZ <= args.rate <= RATE_MAX_HZ:
        raise UsageError(f"--rate must be {RATE_MIN_HZ}-{RATE_MAX_HZ} Hz, got {args.rate}")
    if args.batch is not None and not 1 <= args.batch <= MAX_SAMPLES_PER_BATCH:
        raise UsageError(f"--batch must be 1-{MAX_SAMPLES_PER_BATCH}, got {args.batch}")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    if args.record:
        check_record_folder(args.record)
    if args.reconnect_timeout < 0:
        raise UsageError("--reconnect-timeout must not be negative")
    check_lsl_options(args)
    meter = _Meter(args)
    if args.record or args.lsl:
        await _stream_supervised(args, meter)
        return 0
    # the calibration stored at pairing, and a reconnecting session for ble:// (issue 5)
    session = open_device_session(
        args.url,
        rate_hz=args.rate,
        samples_per_batch=args.batch,
        reconnect_timeout_s=args.reconnect_timeout,
        **_link_options(args),
    )
    if hasattr(session, "add_link_listener"):
        session.add_link_listener(_show_link_event)
    async with session:
        meter.header(session)
        # newtons come from the live pipeline (dsp owns the calibration; drift tracking on)
        pipeline = live_pipeline(session)
        async for batch in session.batches():
            result = pipeline.on_batch(batch.t_s, batch.raw_counts, batch.t_host_s)
            meter.show(session, batch, result.force_n)
            if args.duration is not None and batch.t_s[-1] >= args.duration:
                break
    meter.footer(session)
    return 0


async def _stream_supervised(args, meter: _Meter) -> None:
    """``stream --record`` and ``--lsl``: the supervised run (device.control.run) on zone
    neck_back, so the recording's (and the LSL outlets') filtered force, warnings and stops
    come from the one safety loop (with its tick) rather than from a second pipeline;
    nothing vibrates."""
    from device.control.run import supervised_run
    from dsp.zones import get_zone

    zone = get_zone(None)
    async with supervised_run(
        args.url,
        zone=zone,
        vibrates=False,
        rate_hz=args.rate,
        samples_per_batch=args.batch,
        reconnect_timeout_s=args.reconnect_timeout,
        record_dir=args.record,
        record_meta={"command": "stream"},
        lsl=args.lsl,
        lsl_wait_s=args.lsl_wait,
        **_link_options(args),
    ) as run:
        live, session = run.live, run.session
        if hasattr(session, "add_link_listener"):
            session.add_link_listener(_show_link_event)
        done = False

        def on_batch(batch, result) -> None:
            nonlocal done
            meter.show(session, batch, result.force_n)
            if args.duration is not None and batch.t_s[-1] >= args.duration:
                done = True

        live.add_batch_listener(on_batch)
        run.watch_step("stream")
        meter.header(session)
        while not done and live.failure is None and live.link_error is None:
            live.changed.clear()
            await live.changed.wait()
    if live.failure is not None:
        raise live.failure
    if live.link_error is not None and not done:
        raise live.link_error
    meter.footer(session)


def _show_link_event(event) -> None:
    """Link lost / restored, on stderr (stdout stays one JSON object per batch)."""
    if event.kind == "lost":
        text = f"link lost ({event.error}); reconnecting"
    else:
        text = f"link restored after {event.gap_s:.2f} s ({event.attempts} attempt(s))"
    print(f"\n{text}" if sys.stderr.isatty() else text, file=sys.stderr, flush=True)
