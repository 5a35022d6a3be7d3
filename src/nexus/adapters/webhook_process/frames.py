"""The pipe between the proxy and its webhook child: length-prefixed frames one way, report
lines the other.

Proxy -> child on the child's stdin: the URL as the first frame (never on the command line,
where ``ps`` shows it), then one JSON body per frame; EOF tells the child to finish and exit.
Child -> proxy on its stdout: ``C <sent> <failed>`` after deliveries, and ``F <reason>`` for a
failure worth logging.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("!I")
MAX_FRAME = 16 * 1024 * 1024


def frame(data: bytes) -> bytes:
    return HEADER.pack(len(data)) + data
