"""The one exception tree of massagectl. Lower-layer errors are translated here with
``raise ... from exc`` at the boundary where they occur.

    MassagectlError                      anything the CLI reports as a one-line error
    ├── UsageError(ValueError)           bad input from the user: an option, a file, a URL
    │   ├── BadUrlError                  a link URL that cannot be parsed or has no scheme
    │   ├── InputFileError               a CSV, TOML or JSON file that is malformed
    │   └── RoutineError                 a routine that fails validation
    ├── LinkError(ConnectionError)       the transport to a device failed
    │   ├── PortNotFoundError            no such serial port or device path
    │   ├── DeviceNotFoundError          a BLE device that did not show up
    │   └── LinkClosedError              the link went away (EOF, disconnect)
    ├── DeviceTimeoutError(TimeoutError) the device did not answer in time (handshake, command)
    ├── DeviceRefusedError               the device answered with a Nack
    ├── DeviceDataError                  the device sent values the host cannot use
    ├── ScreeningRefusal                 screening found a reason not to start a session
    └── SafetyStop                       a session was ended by a stop (cause attached)

``UsageError`` and ``LinkError`` also inherit the matching built-in, so code that only knows
the standard library can still catch them.
"""

from __future__ import annotations


class MassagectlError(Exception):
    """Base of every error massagectl raises on purpose."""


class UsageError(MassagectlError, ValueError):
    pass


class BadUrlError(UsageError):
    pass


class InputFileError(UsageError):
    pass


class RoutineError(UsageError):
    pass


class LinkError(MassagectlError, ConnectionError):
    pass


class PortNotFoundError(LinkError):
    pass


class DeviceNotFoundError(LinkError):
    pass


class LinkClosedError(LinkError):
    pass


class DeviceTimeoutError(MassagectlError, TimeoutError):
    pass


class DeviceRefusedError(MassagectlError):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class DeviceDataError(MassagectlError):
    """A DeviceInfo or ForceBatch whose values the host cannot use (a calibration scale of 0
    or NaN, a batch at 0 Hz): refused where the host takes them in, never turned into NaN."""


class ScreeningRefusal(MassagectlError):
    """Screening refused a session; ``advice`` is what to tell the user."""

    def __init__(self, reason: str, advice: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.advice = advice


class SafetyStop(MassagectlError):
    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause
