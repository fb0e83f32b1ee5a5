"""``sim://`` link: a simulated device in this process, spoken to through the same serial
framing as a real port (bytes both ways), so the codec is on the path.

The simulator runs on the link's time base (``device.timebase``): it steps it, and the host
reads the same clock, so the two sides cannot drift apart under load."""

from __future__ import annotations

import asyncio

from device.errors import LinkClosedError, LinkError, UsageError
from device.links.base import FramedLink
from device.links.drivers import driver_class
from device.links.drivers.base import SensorLink
from device.timebase import TimeBase
from firmware_bridge.framing import encode_frame
from firmware_bridge.messages import Message
from simulators.c_firmware import CFirmwareError
from simulators.devices import make_firmware
from simulators.runtime import SimulatorRunner
from simulators.scenario import ScenarioError, load_scenario
from simulators.scripted_user import ScriptedUser
from simulators.sensors import SENSORS, make_sensor


class SimLink(FramedLink):
    kind = "sim"

    def __init__(
        self,
        url,
        *,
        timebase: TimeBase | None = None,
        scenario=None,
        user: ScriptedUser | None = None,
    ) -> None:
        super().__init__(url, timebase=timebase)
        self.timebase.drive()
        try:
            rate = url.params.get("rate")
            self.firmware = make_firmware(
                url.target,
                scenario or url.params.get("scenario"),
                int(rate) if rate else None,
                firmware=url.params.get("firmware", "python"),
                protocol_version=int(url.params.get("protocol", "3")),
            )
        except (ScenarioError, CFirmwareError) as exc:
            raise UsageError(str(exc)) from exc
        if user is None and url.params.get("user") == "scripted":
            user = ScriptedUser()
        #: The simulated person pressing the device, when the routine drives one.
        self.user = user
        if user is not None:
            self.firmware.physics.force_source = user.force_at
        self.runner: SimulatorRunner | None = None

    def announce_step(self, step: dict) -> None:
        if self.user is not None and self.runner is not None:
            self.user.on_step(step, self.timebase.now_s())

    async def _open(self) -> None:
        self.runner = SimulatorRunner(
            self.firmware, self._from_device, clock=self.timebase, on_disconnect=self._unplugged
        )
        self.runner.start().add_done_callback(self._runner_ended)

    def _runner_ended(self, task: asyncio.Task) -> None:
        """The simulator's stepping task ended. Cancelled is a close; an error ends the link
        loudly (the host stops on a link lost), never a device that silently stops
        sending while its deadman no longer runs."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        self._fail(LinkError(f"the simulated device stopped: {type(exc).__name__}: {exc}"))

    def _unplugged(self) -> None:
        """The scenario's ``disconnect`` fault: the device is gone, as a cable pulled out."""
        self._fail(LinkClosedError(f"{self.url}: the device disconnected"))

    def _from_device(self, frame: bytes) -> bool:
        if self.state.value == "closed":
            return False
        self._feed(frame)
        return True

    async def _send(self, msg: Message) -> None:
        if self.runner is None:
            raise LinkClosedError(f"{self.url}: link is not open")
        self.runner.feed(encode_frame(msg))

    async def _close(self) -> None:
        if self.runner is not None:
            await self.runner.stop()


#: how often the in-process sensor simulator steps (loop seconds)
SENSOR_TICK_S = 0.002


class SensorSimLink(SensorLink):
    """``sim://progressor``, ``sim://forceboard``, ``sim://whc06``: the device's simulator
    (``simulators.sensors``) in this process, speaking its real bytes to the device's own
    driver, on the run's time base (which this link steps)."""

    kind = "sim"

    def __init__(
        self,
        url,
        *,
        timebase: TimeBase | None = None,
        scenario=None,
        user: ScriptedUser | None = None,
    ) -> None:
        super().__init__(url, driver_class(url.target)(), timebase=timebase)
        self.timebase.drive()
        try:
            sc = load_scenario(scenario or url.params.get("scenario"))
        except ScenarioError as exc:
            raise UsageError(str(exc)) from exc
        self.sim = make_sensor(url.target, sc)
        self.name = self.sim.name
        if user is None and url.params.get("user") == "scripted":
            user = ScriptedUser()
        self.user = user
        if user is not None:
            self.sim.physics.force_source = user.force_at
        self._task: asyncio.Task | None = None

    @property
    def firmware(self):
        """The simulated device (tests read its true force, as for the ball's firmware)."""
        return self.sim

    def announce_step(self, step: dict) -> None:
        if self.user is not None and self._task is not None:
            self.user.on_step(step, self.timebase.now_s())

    async def _connect(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sensor-sim")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self._fail(LinkError(f"the simulated device stopped: {type(exc).__name__}: {exc}"))

    async def _run(self) -> None:
        while True:
            for char, value in self.sim.advance(self.timebase.advance()):
                self._on_value(char, value)
            await asyncio.sleep(SENSOR_TICK_S)

    async def _write(self, char: str, data: bytes) -> None:
        for c, value in self.sim.write(char, data, self.timebase.now_s()):
            self._on_value(c, value)

    async def _disconnect(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


SENSOR_KINDS = tuple(SENSORS)
