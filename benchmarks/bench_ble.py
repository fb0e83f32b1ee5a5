"""BLE path cost: bleak on the in-project Bumble backend versus plain Bumble, same process,
same run, same software radio (``simulators.ble_radio``) over raw HCI on local TCP.

Measures
- notification throughput: the ball's peripheral notifies N values of 244 bytes (a full
  58-sample ForceBatch) back to back on FORCE; values/s until the host has them all;
- write -> notify round trip: the host writes Hello to COMMAND (without response) and waits
  for DeviceInfo on STATUS; median and 95th percentile.

Each side runs ROUNDS times, alternating; the figure is the median of the rounds. Printed
as a table with the ratio bleak/Bumble (throughput: higher is better; round trip: lower).

    .venv/bin/python benchmarks/bench_ble.py [--values N] [--round-trips K]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bleak import BleakClient
from bumble.core import UUID
from bumble.device import Device, Peer
from bumble.hci import Address
from bumble.transport import open_transport

from device.ble.factory import backends
from firmware_bridge import gatt
from firmware_bridge.messages import DeviceInfo, Hello, decode_message, encode_message
from simulators.ble_radio import SoftwareRadio
from simulators.devices import make_firmware

VALUE = bytes(244)
ROUNDS = 3


async def _burst(radio: SoftwareRadio, n: int) -> None:
    ball = radio.ball
    for _ in range(n):
        await ball.device.notify_subscriber(ball.connection, ball.force_char, VALUE)


async def _throughput(radio: SoftwareRadio, received: asyncio.Queue, n: int) -> float:
    t0 = time.perf_counter()
    await _burst(radio, n)
    for _ in range(n):
        await asyncio.wait_for(received.get(), 10)
    return n / (time.perf_counter() - t0)


async def _round_trips(write, replies: asyncio.Queue, k: int) -> list[float]:
    times = []
    for seq in range(k):
        t0 = time.perf_counter()
        await write(encode_message(Hello(seq=seq)))
        while not isinstance(decode_message(await asyncio.wait_for(replies.get(), 5)), DeviceInfo):
            pass
        times.append(time.perf_counter() - t0)
    return times


async def run_plain_bumble(radio: SoftwareRadio, n: int, k: int) -> tuple[float, list[float]]:
    transport = await open_transport(radio.transport_spec)
    try:
        device = Device.with_hci(
            "bench", Address.generate_static_address(), transport.source, transport.sink
        )
        await device.power_on()
        connection = await device.connect(Address(gatt.SIM_BALL_ADDRESS))
        peer = Peer(connection)
        await peer.request_mtu(gatt.PREFERRED_ATT_MTU)
        await peer.discover_all()

        def char(uuid: str):
            return peer.get_characteristics_by_uuid(UUID(uuid))[0]

        force: asyncio.Queue = asyncio.Queue()
        status: asyncio.Queue = asyncio.Queue()
        await peer.subscribe(char(gatt.FORCE_CHAR_UUID), force.put_nowait)
        await peer.subscribe(char(gatt.STATUS_CHAR_UUID), status.put_nowait)
        command = char(gatt.COMMAND_CHAR_UUID)
        rate = await _throughput(radio, force, n)
        rtts = await _round_trips(
            lambda value: peer.write_value(command, value, with_response=False), status, k
        )
        await connection.disconnect()
        return rate, rtts
    finally:
        await transport.close()


async def run_bleak(radio: SoftwareRadio, n: int, k: int) -> tuple[float, list[float]]:
    _, client_cls = backends(radio.transport_spec)
    async with BleakClient(gatt.SIM_BALL_ADDRESS, timeout=10, backend=client_cls) as client:
        force: asyncio.Queue = asyncio.Queue()
        status: asyncio.Queue = asyncio.Queue()
        await client.start_notify(gatt.FORCE_CHAR_UUID, lambda _c, d: force.put_nowait(d))
        await client.start_notify(gatt.STATUS_CHAR_UUID, lambda _c, d: status.put_nowait(d))
        rate = await _throughput(radio, force, n)
        rtts = await _round_trips(
            lambda value: client.write_gatt_char(gatt.COMMAND_CHAR_UUID, value, response=False),
            status,
            k,
        )
        return rate, rtts


async def _wait_advertising(radio: SoftwareRadio) -> None:
    async with asyncio.timeout(10):
        while radio.ball.connection is not None or not (
            radio.ball_controller.le_legacy_advertiser.enabled
        ):
            await asyncio.sleep(0.01)


async def main(n: int, k: int) -> None:
    radio = SoftwareRadio(make_firmware("ball"), log=lambda _t: None)
    await radio.start()
    results: dict[str, list[tuple[float, list[float]]]] = {"bumble": [], "bleak": []}
    try:
        for _ in range(ROUNDS):
            for name, run in (("bumble", run_plain_bumble), ("bleak", run_bleak)):
                await _wait_advertising(radio)
                results[name].append(await run(radio, n, k))
    finally:
        await radio.stop()

    def figures(name: str) -> tuple[float, float, float]:
        rate = statistics.median(r for r, _ in results[name])
        p50 = statistics.median(statistics.median(t) for _, t in results[name])
        p95 = statistics.median(statistics.quantiles(t, n=20)[18] for _, t in results[name])
        return rate, p50 * 1e3, p95 * 1e3

    plain, via_bleak = figures("bumble"), figures("bleak")
    print(f"BLE over Bumble's software radio, raw HCI on local TCP; {ROUNDS} rounds, medians")
    print(f"notifications: {n} x {len(VALUE)} B per round; round trips: {k} per round")
    print(f"{'':32}{'Bumble':>12}{'bleak+Bumble':>14}{'ratio':>8}")
    print(
        f"{'notifications/s':32}{plain[0]:>12.0f}{via_bleak[0]:>14.0f}"
        f"{via_bleak[0] / plain[0]:>8.2f}"
    )
    print(
        f"{'payload throughput (kB/s)':32}{plain[0] * len(VALUE) / 1e3:>12.0f}"
        f"{via_bleak[0] * len(VALUE) / 1e3:>14.0f}{via_bleak[0] / plain[0]:>8.2f}"
    )
    print(
        f"{'write->notify round trip p50 (ms)':32}{plain[1]:>12.3f}{via_bleak[1]:>14.3f}"
        f"{via_bleak[1] / plain[1]:>8.2f}"
    )
    print(
        f"{'write->notify round trip p95 (ms)':32}{plain[2]:>12.3f}{via_bleak[2]:>14.3f}"
        f"{via_bleak[2] / plain[2]:>8.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=2000, help="notifications per round")
    parser.add_argument("--round-trips", type=int, default=200, help="round trips per round")
    args = parser.parse_args()
    asyncio.run(main(args.values, args.round_trips))
