"""SHA256SUMS: the digests a repository publishes for its images, in sha256sum's format.

One line per file, ``DIGEST  NAME`` (text mode) or ``DIGEST *NAME`` (binary mode),
as ``sha256sum calit2/*.img.gz > SHA256SUMS`` writes it at the repository root; names
are paths relative to that root (a leading ``./`` is dropped). Blank lines and ``#``
comments are allowed. A web repository must have one, and every image it serves
must be listed: an image nobody vouched for is never booted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pragmash.errors import RepositoryError

SUMS_NAME = "SHA256SUMS"
_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")


@dataclass(frozen=True)
class Sums:
    """Digests by repository-relative name, and where each was declared."""

    source: str  # the file or URL it was read from, for messages
    digests: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def digest(self, name: str) -> str | None:
        return self.digests.get(normalise(name))

    def where(self, name: str) -> str:
        """``SHA256SUMS:LINE`` for a listed name, for messages that point at the listing."""
        line = self.lines.get(normalise(name))
        return f"{self.source}:{line}" if line else self.source

    def names_under(self, prefix: str) -> list[str]:
        """Listed names starting with ``prefix`` (how split parts are found on a web server)."""
        return sorted(n for n in self.digests if n.startswith(prefix))


class DigestMismatch(RepositoryError):
    """An image's bytes are not what SHA256SUMS says: nothing of it was kept."""

    def __init__(self, name: str, where: str, expected: str, got: str) -> None:
        super().__init__(
            f"{name}: SHA256 mismatch: {where} lists {expected}, but its bytes hash to {got};"
            " refused (an image that does not match is never used, nor kept in the cache)",
            hint="the repository's image or its SHA256SUMS is wrong (or the transfer was"
            " corrupted): fix the repository; nothing was allocated",
        )
        self.name = name
        self.expected = expected
        self.got = got


def normalise(name: str) -> str:
    """A repository-relative name as SHA256SUMS keys it: POSIX, no leading ``./``."""
    return str(PurePosixPath(name.strip().lstrip("*")))


def parse_sums(text: str, source: str) -> Sums:
    """Read SHA256SUMS text; a malformed line is an error naming ``source:LINE``."""
    digests: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise RepositoryError(
                f"{source}:{number}: {line[:80]!r} is not a SHA256SUMS line: expected"
                " '64-hex-digit-digest  relative/path' as sha256sum writes it"
            )
        digest, name = match.group(1).lower(), normalise(match.group(2))
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts:
            raise RepositoryError(
                f"{source}:{number}: {name!r} leaves the repository: expected a path relative"
                " to the repository root, without '..'"
            )
        if name in digests and digests[name] != digest:
            raise RepositoryError(
                f"{source}:{number}: {name!r} is listed again with another digest"
                f" (first on line {lines[name]})"
            )
        digests[name] = digest
        lines.setdefault(name, number)
    return Sums(source, digests, lines)
