"""Before the live window starts: can Qt show a window here? Qt itself aborts the process
(exit 134, a core dump message) when it has no display or its X11 plugin misses a system
library; the person gets one line saying what is missing and how to get it instead.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

from device.errors import UsageError

#: Libraries Qt 6's X11 (xcb) plugin loads, and the Debian/Ubuntu packages that hold them.
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-shape": "libxcb-shape0",
    "xcb-randr": "libxcb-randr0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-image": "libxcb-image0",
    "xkbcommon-x11": "libxkbcommon-x11-0",
}
#: Platforms that need no display (nothing is shown, or it is shown elsewhere).
HEADLESS = ("offscreen", "minimal", "vnc")


def qt_platform() -> str:
    """The platform Qt will pick: QT_QPA_PLATFORM, else on Linux wayland in a Wayland
    session and xcb otherwise."""
    chosen = os.environ.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()
    if chosen:
        return chosen.split(";", 1)[0]
    if os.environ.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "xcb"


def check_window_can_open() -> None:
    """``UsageError`` (one line, exit 2) when Qt could not open a window here."""
    if not sys.platform.startswith("linux"):
        return
    platform = qt_platform()
    if platform in HEADLESS:
        return
    if platform == "wayland" or not platform.startswith("xcb"):
        return  # Qt says itself what a Wayland or another plugin lacks; it does not abort
    if not os.environ.get("DISPLAY"):
        raise UsageError(
            "no display to show the window on (DISPLAY is not set): run it on a desktop, "
            "over 'ssh -X', under 'xvfb-run', or with QT_QPA_PLATFORM=offscreen (nothing shown)"
        )
    missing = [pkg for lib, pkg in XCB_LIBRARIES.items() if ctypes.util.find_library(lib) is None]
    if missing:
        raise UsageError(
            "the live window needs system libraries that are not installed: "
            f"sudo apt install {' '.join(missing)} (Debian/Ubuntu; other systems: the same "
            "xcb libraries)"
        )
