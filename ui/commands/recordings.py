"""``massagectl recordings``: the past recordings in the recordings folder, and ``--record``'s
default place.

``--record`` without a folder records into a new folder named by date, time and what ran
(``20260301-142501-neck-relief``) inside ``recordings/`` of the config folder
(``MASSAGECTL_CONFIG_DIR``, else platformdirs' user config folder for massagectl, e.g.
``~/.config/massagectl/recordings`` on Linux). ``massagectl recordings`` lists what is there
(or in ``--dir DIR``): date, routine, duration in device time, stops and faults, and whether
the recorder finished.
"""

from __future__ import annotations

import json
from pathlib import Path

from device.config.known_devices import recordings_dir
from device.recording.folder import default_folder_name, list_recordings
from device.routine.progress import format_duration

#: ``--record`` given without a folder.
DEFAULT_PLACE = "\0default"
RECORD_HELP = (
    "record the session into a new folder DIR; --record alone: a new dated folder in the "
    "recordings folder ('massagectl recordings' lists them)"
)


def add_record_option(parser, help_text: str = RECORD_HELP) -> None:
    """``--record [DIR]`` on a command's parser (resolve it with ``record_folder``)."""
    parser.add_argument("--record", nargs="?", const=DEFAULT_PLACE, metavar="DIR", help=help_text)


def record_folder(value: str | None, what: str) -> str | None:
    """The folder to record into: ``value`` as given, a new one in the recordings folder
    for ``--record`` alone (named for ``what`` ran), or None (no recording)."""
    if value is None:
        return None
    if value == DEFAULT_PLACE:
        return str(recordings_dir() / default_folder_name(what))
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "recordings",
        help="list past recordings (date, routine, duration, stops)",
        description=(
            "List the recordings in the recordings folder (where --record without a folder "
            "puts them: recordings/ in the config folder), oldest first: start time, "
            "routine or command, duration in device time, stops and faults, and whether "
            "the recorder finished. 'massagectl report FOLDER' shows one in detail."
        ),
    )
    p.add_argument("--dir", metavar="DIR", help="list this folder instead")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    parent = Path(args.dir) if args.dir else recordings_dir()
    infos = list_recordings(parent)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "folder": str(i.folder),
                        "started_at": i.started_at,
                        "routine": i.routine,
                        "command": i.command,
                        "duration_s": i.duration_s,
                        "stops": i.stops,
                        "complete": i.complete,
                        "error": i.error,
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return 0
    if not infos:
        print(f"no recordings in {parent}")
        return 0
    print(f"recordings in {parent}:")
    print(f"  {'started (UTC)':<20} {'routine':<18} {'duration':>12} {'stops':>5}  folder")
    for i in infos:
        when = (i.started_at or "?")[:19].replace("T", " ")
        what = i.routine or i.command or "-"
        duration = format_duration(i.duration_s) if i.duration_s is not None else "-"
        note = "" if i.complete else "  (unfinished)"
        if i.error:
            note = f"  (damaged: {i.error})"
        print(f"  {when:<20} {what:<18} {duration:>12} {i.stops:>5}  {i.folder.name}{note}")
    return 0
