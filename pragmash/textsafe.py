"""Text from guests and tools, made safe to show on an administrator's terminal.

A guest's serial console and a tool's output are bytes pragmash does not control:
escape sequences in them would move the cursor, retitle or reprogram the terminal
that shows an error or ``show node``. They are cleaned where they enter pragmash
(the engine's console tail, a tool's output lines), so the journal, errors and
every front end only ever hold printable text.
"""

from __future__ import annotations

import re

# C0 controls except tab, DEL, and the C1 controls (U+0080-U+009F), which some
# terminals also obey
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(line: str) -> str:
    """``line`` with every control character shown as ``\\xNN`` instead of obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line)
