"""Device time: the firmware's u32 microsecond counter, unwrapped into seconds, checked
against the batch sequence, and kept monotonic.

The counter wraps every 2^32 µs (71.6 min). Batches arrive in order, so the step from one
timestamp to the next, modulo 2^32, is the shorter way round: a wrap forward, or a step
back (across zero, too).

A device clock can also *jump* (a firmware that resets or re-syncs its timer, a glitch):
time stepping back would run host-side device time backwards (a 5 s vibration counted as
6 s), a step forward would count seconds nobody lived (a session ended by its vibration
time). The batch sequence says how much device time should have passed: a batch that starts
``batches_since_last`` batches after the previous one should start that many batch periods
(the previous batch's samples / rate) after it. When the timestamp is off by more than
``jump_tolerance_s`` (and, forward, the host clock did not see that much time go by either),
it is a jump: counted in ``jumps``, and absorbed by an offset, so that the times handed out
continue from where the sequence says they should and never go backwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WRAP_US = 1 << 32
#: A batch start this far (seconds) from where the sequence puts it is a clock jump, or half
#: a batch period if that is more (a device timestamps its batches to the sample).
JUMP_TOLERANCE_S = 0.02


@dataclass(frozen=True)
class ClockJump:
    """The device clock jumped by ``jump_s`` (negative: back) at host-side device time
    ``t_s`` (where the sequence put the batch)."""

    t_s: float
    jump_s: float


class DeviceClock:
    """Unwraps u32 µs timestamps into a monotonic device time in seconds.

    ``t0`` is the first timestamp seen: device time starts at 0 s there, so recordings and
    plots begin at zero whatever the device's power-on time.
    """

    def __init__(self, jump_tolerance_s: float = JUMP_TOLERANCE_S) -> None:
        self.jump_tolerance_s = jump_tolerance_s
        self._unwrapped_us = 0
        self._last_us: int | None = None
        #: seconds added to the device's own time to absorb its jumps
        self._offset_s = 0.0
        #: where the batch right after the last one should start, and the last batch period
        self._next_s: float | None = None
        self._period_s = 0.0
        self._last_host_s: float | None = None
        #: every jump seen, in order
        self.jumps: list[ClockJump] = []

    def unwrap_us(self, t_us: int) -> int:
        """The unwrapped timestamp (µs since the first one) of ``t_us``: the step from the
        last one is taken modulo 2^32 as the shorter way round (a wrap forward, or a step
        back across zero)."""
        if self._last_us is None:
            self._last_us = t_us
            self._unwrapped_us = 0
            return 0
        step_us = (t_us - self._last_us) % WRAP_US
        if step_us >= WRAP_US // 2:
            step_us -= WRAP_US
        self._last_us = t_us
        self._unwrapped_us += step_us
        return self._unwrapped_us

    def batch_times_s(
        self,
        t_us: int,
        rate_hz: float,
        n: int,
        *,
        batches_since_last: int = 1,
        t_host_s: float | None = None,
    ) -> np.ndarray:
        """Device times (s) of the ``n`` samples of a batch whose first sample is at ``t_us``.

        ``batches_since_last``: how many batch periods after the previous batch this one
        starts by the sequence (1 + the batches lost in between; 1 also when the sequence
        started afresh, after a reconnect); ``t_host_s``: host seconds at which the batch
        arrived (None: unknown). A forward step the host clock saw pass too is a real pause
        (a reconnect); any other step is a jump, absorbed (see the module docstring); the
        last one is ``jumps[-1]``."""
        start_s = self.unwrap_us(t_us) * 1e-6 + self._offset_s
        if self._next_s is not None:
            expected_s = self._next_s + (batches_since_last - 1) * self._period_s
            error_s = start_s - expected_s
            tolerance_s = max(self.jump_tolerance_s, 0.5 * self._period_s)
            host_elapsed_s = (
                t_host_s - self._last_host_s
                if t_host_s is not None and self._last_host_s is not None
                else None
            )
            real_pause = (
                error_s > 0
                and host_elapsed_s is not None
                and host_elapsed_s + tolerance_s >= error_s
            )
            if abs(error_s) > tolerance_s and not real_pause:
                self.jumps.append(ClockJump(t_s=expected_s, jump_s=error_s))
                self._offset_s -= error_s
                start_s = expected_s
        self._period_s = n / float(rate_hz)
        self._next_s = start_s + self._period_s
        if t_host_s is not None:
            self._last_host_s = t_host_s
        return start_s + np.arange(n) / float(rate_hz)
