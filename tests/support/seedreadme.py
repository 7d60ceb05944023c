"""The seed's pragma_boot README (tests/data/seed), and the vc-out.xml example it gives.

Tests that read "the seed README's example, unchanged" take it from the README itself,
so the example cannot drift from the file it quotes.
"""

from __future__ import annotations

from pathlib import Path

SEED_README = Path(__file__).parents[1] / "data" / "seed" / "pragma_boot-README.txt"


def seed_vc_out() -> str:
    """The README's "vc-out.xml file example", as it stands there (indented one space)."""
    lines = SEED_README.read_text(encoding="utf-8").splitlines(keepends=True)
    start = lines.index(" <vc>\n")
    end = lines.index(" </vc>\n", start)
    return "".join(lines[start : end + 1])
