"""LSL outlets (``--lsl``, docs/lsl.md): the force and the events on the Lab Streaming Layer,
for LabRecorder and anything else that records LSL streams beside EMG, motion or video.

- ``massagectl-force`` (type ``Force``): two float32 channels, ``force_raw`` and
  ``force_filtered`` in newtons (labels, type ``force`` and unit ``newtons`` in the stream's
  ``desc/channels``), regular at the device rate. Each sample's LSL timestamp is its device
  time mapped onto the host clock (``dsp.host_clock.HostClockModel``) and then onto LSL's
  clock.
- ``massagectl-markers`` (type ``Markers``): one string channel, irregular; every event (a
  stop with its cause, hold start and end, step, vibration command, ...) as its JSON
  (``Event.to_dict``, NaN as null), time-stamped the same way at the event's device time.

The outlets come from mne-lsl (the ``lsl`` extra), which bundles liblsl; imported only here,
only when ``--lsl`` is given.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import UsageError
from dsp.events import Event
from dsp.host_clock import HostClockModel

FORCE_STREAM = "massagectl-force"
MARKER_STREAM = "massagectl-markers"
CHANNELS = ("force_raw", "force_filtered")
LSL_EXTRA_TEXT = "--lsl needs the lsl extra (liblsl through mne-lsl): pip install 'massagectl[lsl]'"


def require_lsl() -> Any:
    """mne-lsl's ``lsl`` module, or UsageError (exit 2) naming the extra to install.
    liblsl logs only its errors (our ``lsl_api.cfg``) unless LSLAPICFG says otherwise."""
    os.environ.setdefault("LSLAPICFG", str(Path(__file__).with_name("lsl_api.cfg")))
    try:
        from mne_lsl import lsl
    except ImportError:
        raise UsageError(LSL_EXTRA_TEXT) from None
    return lsl


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def marker_text(event: Event) -> str:
    """The marker of ``event``: its dict as JSON (NaN as null)."""
    return json.dumps(_plain(event.to_dict()), separators=(",", ":"), default=str)


class LslOutlets:
    """The force and marker outlets. ``on_batch(batch, result)`` and ``on_event(event)`` are
    listeners of the supervised loop (or any loop with the same calls)."""

    def __init__(self, *, rate_hz: float, source_id: str, speed: float = 1.0) -> None:
        lsl = require_lsl()
        self._lsl = lsl
        force = lsl.StreamInfo(
            FORCE_STREAM, "Force", len(CHANNELS), float(rate_hz), "float32", source_id
        )
        force.set_channel_names(list(CHANNELS))
        force.set_channel_types("force")
        force.set_channel_units("newtons")
        markers = lsl.StreamInfo(MARKER_STREAM, "Markers", 1, 0.0, "string", source_id + "-ev")
        self.force = lsl.StreamOutlet(force)
        self.markers = lsl.StreamOutlet(markers)
        self.clock = HostClockModel(speed)
        # LSL's clock and time.monotonic: the same steady clock on Linux, but not promised
        self._lsl_minus_host_s = lsl.local_clock() - time.monotonic()
        self._pending: list[Event] = []
        self.samples_pushed = 0
        self.markers_pushed = 0

    def wait_for_consumers(self, timeout_s: float) -> bool:
        """Block until both outlets have a consumer (LabRecorder), up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for outlet in (self.force, self.markers):
            if not outlet.wait_for_consumers(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def _lsl_times(self, device_s, monotonic: bool = True) -> np.ndarray:
        return self.clock.to_host(device_s, monotonic=monotonic) + self._lsl_minus_host_s

    def on_batch(self, batch, result) -> None:
        t_s = np.asarray(batch.t_s, dtype=np.float64)
        if t_s.size == 0:
            return
        self.clock.observe(float(t_s[-1]), float(batch.t_host_s))
        data = np.column_stack(
            (np.asarray(result.force_n, np.float32), np.asarray(result.filtered_n, np.float32))
        )
        self.force.push_chunk(np.ascontiguousarray(data), timestamp=self._lsl_times(t_s))
        self.samples_pushed += t_s.size
        if self._pending:
            pending, self._pending = self._pending, []
            for event in pending:
                self.on_event(event)

    def on_event(self, event: Event) -> None:
        try:
            stamp = float(self._lsl_times(np.array([event.t_s]), monotonic=False)[0])
        except ValueError:  # before the first batch: no clock yet
            self._pending.append(event)
            return
        self.markers.push_sample([marker_text(event)], timestamp=stamp)
        self.markers_pushed += 1

    def close(self) -> None:
        """Send what is held (events before any batch) and let the outlets go."""
        for event in self._pending:
            self.markers.push_sample([marker_text(event)], timestamp=self._lsl.local_clock())
            self.markers_pushed += 1
        self._pending = []
        del self.force, self.markers
