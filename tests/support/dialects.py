"""pragma_boot driver folders of the 2013 generation as the tests use them, and the calls they log."""

from __future__ import annotations

import re
from pathlib import Path

DATA = Path(__file__).parents[1] / "data"


PB2013 = DATA / "drivers_2013" / "pb2013_client"


CALL = re.compile(r"^(\S+) cwd=(\S+) argc=(\d+)((?: \[[^\]]*\])*)$")


def calls(folder: Path) -> list[tuple[str, Path, list[str]]]:
    """(script, working folder, arguments) per logged call."""
    out = []
    for line in (folder / "calls.log").read_text(encoding="utf-8").splitlines():
        m = CALL.match(line)
        assert m, line
        args = re.findall(r"\[([^\]]*)\]", m.group(4))
        assert len(args) == int(m.group(3)), line
        out.append((m.group(1), Path(m.group(2)), args))
    return out
