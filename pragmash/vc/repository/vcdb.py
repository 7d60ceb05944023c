"""The VC repository (``--base_path``): vcdb.txt names each VC and its vc-in.xml.

vcdb.txt holds ``name,relative/path/vc-in.xml`` a line, as pragma_boot's did; ``#``
starts a comment line. Repositories are shared between sites, so every path must
stay inside the repository: absolute paths, ``..`` and symlinks that lead out are
refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

from pragmash.errors import RepositoryError
from pragmash.vc.formats.sums import SUMS_NAME, Sums, parse_sums

VCDB_NAME = "vcdb.txt"

# A VC name becomes part of domain names, folder names and ledger keys.
_VCNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def validate_vcname(vcname: str) -> str:
    """Return ``vcname`` if it is a usable VC name, else raise RepositoryError."""
    if not _VCNAME.fullmatch(vcname):
        raise RepositoryError(
            f"{vcname!r} is not a VC name: expected 1 to 63 letters, digits, '_' or '-',"
            " starting with a letter or digit"
        )
    return vcname


@dataclass(frozen=True)
class Repository:
    """A loaded repository: each VC name and the absolute path of its vc-in.xml."""

    base_path: Path
    entries: dict[str, Path]
    # Where each entry was declared, so later errors can point at the vcdb.txt line.
    lines: dict[str, int] = field(default_factory=dict)
    # The repository's SHA256SUMS, where it has one (optional for a local folder).
    sums: Sums | None = None

    @property
    def vcdb_path(self) -> Path:
        return self.base_path / VCDB_NAME

    @property
    def location(self) -> str:
        """Where the repository is, as the user named it: a folder here, a URL for the web."""
        return str(self.base_path)

    @property
    def remote(self) -> str | None:
        """The base URL of a web repository; None for a folder."""
        return None

    def shown(self, path: Path) -> str:
        """A file of the repository as messages name it (a URL for a web repository)."""
        return str(path)

    def relative(self, path: Path) -> str:
        """``path`` as a repository-relative POSIX name (how SHA256SUMS lists it)."""
        return path.relative_to(self.base_path).as_posix()

    def entry(self, vcname: str, vcdb: str = "vcdb.txt") -> Path:
        """Where vcdb.txt puts ``vcname``'s vc-in.xml; an unknown name is a RepositoryError.

        ``vcdb`` names the file in the hint, so a web repository can say it is the server's.
        """
        validate_vcname(vcname)
        path = self.entries.get(vcname)
        if path is None:
            known = ", ".join(sorted(self.entries)) or "none"
            raise RepositoryError(
                f"{self.shown(self.vcdb_path)}: no VC named {vcname!r}; known VCs: {known}",
                hint=f"add a line 'NAME,relative/path/vc-in.xml' to {vcdb},"
                " or pick one of the known names",
            )
        return path

    def vc_in_path(self, vcname: str) -> Path:
        """The vc-in.xml of ``vcname``; unknown names and missing files are RepositoryErrors."""
        path = self.entry(vcname)
        if path.is_dir():
            raise self.names_a_folder(vcname, self.shown(path))
        if not path.is_file():
            raise RepositoryError(
                f"{self.where(vcname)}: the vc-in.xml of {vcname!r} does not exist: {path}"
            )
        return path

    def where(self, vcname: str) -> str:
        """The vcdb.txt line that declares ``vcname`` (``…/vcdb.txt:3``)."""
        line = self.lines.get(vcname)
        return f"{self.shown(self.vcdb_path)}:{line}" if line else self.shown(self.vcdb_path)

    def names_a_folder(self, vcname: str, shown: str) -> RepositoryError:
        """The error for a vcdb.txt entry whose vc-in.xml is a folder (``b,calit2``)."""
        return RepositoryError(
            f"{self.where(vcname)}: the vc-in.xml of {vcname!r} is a folder: {shown}:"
            " expected the path of a vc-in.xml file (e.g. 'calit2/vc-in.xml')"
        )


def demo_repository_path() -> Path:
    """The repository bundled with pragmash (holds ``calit2``), used when no base_path is given."""
    demo = resources.files("pragmash.demo").joinpath("repository")
    if not isinstance(demo, Path):
        raise RepositoryError(
            "the bundled demo repository is not on the file system (zipped install?):"
            " give --base_path"
        )
    return demo


def _parse_line(
    vcdb: Path | str, number: int, line: str, base: Path, shown_base: Path | str | None = None
) -> tuple[str, Path] | None:
    """One vcdb.txt line as (name, absolute vc-in.xml path), None for blanks and comments.

    ``vcdb`` and ``shown_base`` are how messages name the file and the repository (a
    web repository's URL rather than its local copy).
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    where = f"{vcdb}:{number}"
    name, comma, relative = text.partition(",")
    name, relative = name.strip(), relative.strip()
    if not comma or not name or not relative:
        raise RepositoryError(
            f"{where}: {text!r} is not a vcdb line: expected 'name,relative/path/vc-in.xml'"
        )
    if not _VCNAME.fullmatch(name):
        raise RepositoryError(
            f"{where}: {name!r} is not a VC name: expected 1 to 63 letters, digits, '_' or '-',"
            " starting with a letter or digit"
        )
    pure = PurePosixPath(relative)
    if not pure.parts or pure.parts == ("/",) or relative.endswith(("/", "/.")):
        raise RepositoryError(
            f"{where}: {relative!r} names a folder: expected the path of a vc-in.xml file"
            f" relative to {shown_base or base} (e.g. '{name}/vc-in.xml')"
        )
    if pure.is_absolute() or ".." in pure.parts:
        raise RepositoryError(
            f"{where}: {relative!r} leaves the repository: expected a path relative to"
            f" {shown_base or base}, without '..'"
        )
    path = base / pure
    # Symlinks may point anywhere; what they resolve to must still be inside.
    if not path.resolve().is_relative_to(base.resolve()):
        raise RepositoryError(
            f"{where}: {relative!r} leads outside the repository (through a symlink):"
            f" expected a file inside {shown_base or base}"
        )
    return name, path


def load_repository(base_path: Path | None) -> Repository:
    """Read ``base_path``/vcdb.txt; None means the bundled demo repository."""
    base = Path(base_path) if base_path is not None else demo_repository_path()
    base = base.absolute()
    if not base.exists():
        raise RepositoryError(f"{base}: the repository folder does not exist (--base_path)")
    if not base.is_dir():
        raise RepositoryError(f"{base}: is not a folder; the repository folder is expected")
    vcdb = base / VCDB_NAME
    try:
        text = vcdb.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RepositoryError(
            f"{vcdb}: missing: a repository holds vcdb.txt with 'name,relative/path/vc-in.xml'"
            " lines"
        ) from None
    except UnicodeDecodeError:
        raise RepositoryError(f"{vcdb}: is not UTF-8 text") from None
    except OSError as exc:
        raise RepositoryError(f"{vcdb}: cannot be read: {exc.strerror}") from None
    entries, lines = parse_vcdb(text, vcdb, base)
    return Repository(base_path=base, entries=entries, lines=lines, sums=_local_sums(base))


def parse_vcdb(
    text: str, vcdb: Path | str, base: Path, shown_base: Path | str | None = None
) -> tuple[dict[str, Path], dict[str, int]]:
    """vcdb.txt's entries (name -> vc-in.xml under ``base``) and the line each is on."""
    entries: dict[str, Path] = {}
    lines: dict[str, int] = {}
    # a byte-order mark (Windows editors write one) is accepted, as in recipes
    text = text.removeprefix("\ufeff")
    for number, line in enumerate(text.splitlines(), start=1):
        parsed = _parse_line(vcdb, number, line, base, shown_base)
        if parsed is None:
            continue
        name, path = parsed
        if name in entries:
            raise RepositoryError(
                f"{vcdb}:{number}: {name!r} is already defined on line {lines[name]}:"
                " expected each VC name once"
            )
        entries[name] = path
        lines[name] = number
    return entries, lines


def _local_sums(base: Path) -> Sums | None:
    """The folder's SHA256SUMS if it has one: its images are then checked against it."""
    path = base / SUMS_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RepositoryError(f"{path}: cannot be read as text: {exc}") from None
    return parse_sums(text, str(path))
