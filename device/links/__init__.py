"""Device links: one small async contract, one module per transport, opened from a URL.

Transports are imported lazily so that a missing optional backend becomes a clear error, and
so that only the link in use loads bleak or pyserial.
"""

from __future__ import annotations

from device.links.base import Link, LinkStats
from device.timebase import TimeBase
from device.urls import DeviceUrl, parse_url

#: the in-process simulators of the sensors that speak their own protocols
SENSOR_SIMS = ("progressor", "forceboard", "whc06")


def open_link(
    url: str | DeviceUrl,
    *,
    speed: float | None = None,
    timebase: TimeBase | None = None,
    **options,
) -> Link:
    """A link for ``url`` (not yet opened: use ``async with open_link(url) as link``).

    The link carries the run's time base (``link.timebase``): ``timebase`` if given (a
    reconnect keeps the run's), else one built from ``speed`` or the URL's ``?speed=K``.
    Other ``options`` go to the transport: ``scenario``/``user`` for sim://, ``hci`` for ble://.
    """
    parsed = url if isinstance(url, DeviceUrl) else parse_url(url)
    if timebase is None:
        timebase = TimeBase.for_url(parsed, speed)
    if parsed.scheme == "serial":
        from device.links.serial_link import SerialLink

        return SerialLink(parsed, timebase=timebase)
    if parsed.scheme == "sim":
        if parsed.target in SENSOR_SIMS:
            from device.links.sim import SensorSimLink

            return SensorSimLink(parsed, timebase=timebase, **options)
        from device.links.sim import SimLink

        return SimLink(parsed, timebase=timebase, **options)
    if parsed.scheme == "ble":
        from device.links.drivers import kind_for_name

        kind = parsed.params.get("kind") or (
            _recorded_kind(parsed) if parsed.is_ble_address else kind_for_name(parsed.target)
        )
        if kind not in (None, "ball"):
            from device.links.sensor_ble import open_sensor_ble

            return open_sensor_ble(parsed, kind, timebase=timebase, **options)
        from device.links.ble import BleLink

        return BleLink(parsed, timebase=timebase, **options)
    if parsed.scheme == "replay":
        from device.links.replay import ReplayLink

        return ReplayLink(parsed, speed=speed, timebase=timebase, **options)
    from device.errors import BadUrlError

    raise BadUrlError(f"{parsed}: the {parsed.scheme}:// link is not available yet")


def _recorded_kind(url: DeviceUrl) -> str | None:
    """The kind the known-devices record of ``ble://ADDRESS`` holds (None: no record)."""
    from device.config.known_devices import record_for

    record = record_for(url)
    return record.kind if record is not None else None


__all__ = ["Link", "LinkStats", "open_link"]
