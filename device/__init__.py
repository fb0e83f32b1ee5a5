"""Links to devices, device sessions, and everything that talks to hardware or files."""

import logging

# The debug log (massagectl.session, massagectl.events) goes nowhere unless a face attaches
# a handler to it (``--log FILE``): used as a library, or beside a library that configures
# the root logger, stop and fault events must not reach stderr.
_log = logging.getLogger("massagectl")
_log.addHandler(logging.NullHandler())
_log.propagate = False
