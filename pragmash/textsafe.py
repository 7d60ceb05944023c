"""Text pragmash does not control, made safe to show on an administrator's terminal.

A guest's serial console, a tool's output, and what a user typed (a recipe, a
``--set`` value, a site config string) may hold escape sequences that would move
the cursor, retitle or reprogram the terminal that shows an error, a step line or
``show node``. Guest and tool output is cleaned where it enters pragmash (the
engine's console tail, a tool's output lines); recipes refuse control characters
when parsed; and the front ends pass everything they print through
:func:`printable_text`, so nothing slips through by another way. It sits on the
ground floor because every layer, the errors included, shows such text.
"""

from __future__ import annotations

import re

# C0 controls except tab, DEL, and the C1 controls (U+0080-U+009F), which some
# terminals also obey
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(line: str) -> str:
    """``line`` with every control character shown as ``\\xNN`` instead of obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line)


def printable_text(text: str) -> str:
    """Several lines made printable, keeping their line breaks."""
    return "\n".join(printable(line) for line in text.split("\n"))
