"""``sim://`` link: a simulated device in this process, spoken to through the same serial
framing as a real port (bytes both ways), so the codec is on the path.

The simulator runs on the link's time base (``device.timebase``): it steps it, and the host
reads the same clock, so the two sides cannot drift apart under load."""

from __future__ import annotations

import asyncio

from device.errors import LinkClosedError, LinkError, UsageError
from device.links.base import FramedLink
from device.timebase import TimeBase
from firmware_bridge.framing import encode_frame
from firmware_bridge.messages import Message
from simulators.devices import make_firmware
from simulators.runtime import SimulatorRunner
from simulators.scenario import ScenarioError
from simulators.scripted_user import ScriptedUser


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
            self.firmware = make_firmware(url.target, scenario or url.params.get("scenario"))
        except ScenarioError as exc:
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
