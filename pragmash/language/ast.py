"""The recipe language as frozen dataclasses.

The parser turns Lark's tree into these once; everything after it (checks, the
interpreter, the REPL, the journal) works on them and never sees a Lark object.
Every node carries its :class:`~pragmash.errors.Span` so any later problem can be
reported at its position in the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pragmash.errors import Span


@dataclass(frozen=True)
class VarRef:
    """``$NAME`` or ``${NAME}`` inside a word."""

    name: str
    span: Span


@dataclass(frozen=True)
class Word:
    """One argument: literal text and variable references, concatenated at run time."""

    parts: tuple[str | VarRef, ...]
    span: Span
    quoted: bool = False

    @property
    def literal(self) -> str | None:
        """The text when the word holds no variable, else None."""
        if all(isinstance(p, str) for p in self.parts):
            return "".join(p for p in self.parts if isinstance(p, str))
        return None

    @property
    def variables(self) -> tuple[VarRef, ...]:
        return tuple(p for p in self.parts if isinstance(p, VarRef))

    def __str__(self) -> str:
        """The word as written, variables as ``${NAME}`` (for display, not for running)."""
        return "".join(p if isinstance(p, str) else f"${{{p.name}}}" for p in self.parts)


TargetKind = Literal["frontend", "compute", "all", "node", "word"]


@dataclass(frozen=True)
class Target:
    """A set of nodes: ``frontend``, ``compute``, ``compute[i]``, ``compute[i:j]``, ``all``, a name.

    ``compute[i]`` has ``index=i``; ``compute[i:j]`` has ``index=i, stop=j, is_slice=True``
    (Python slice semantics, either bound may be None); a node name has ``kind="node"``.
    A driver call's argument that holds a variable (``ve_driver/boot $node``) is
    ``kind="word"`` with its ``word``: which target it is is known once the variable's
    value is (:func:`pragmash.language.targets.resolve_targets`).
    """

    kind: TargetKind
    span: Span
    index: int | None = None
    stop: int | None = None
    is_slice: bool = False
    name: str | None = None
    word: Word | None = None

    def __str__(self) -> str:
        if self.kind == "word":
            return str(self.word)
        if self.kind == "node":
            return self.name or ""
        if self.kind == "compute" and self.is_slice:
            lo = "" if self.index is None else str(self.index)
            hi = "" if self.stop is None else str(self.stop)
            return f"compute[{lo}:{hi}]"
        if self.kind == "compute" and self.index is not None:
            return f"compute[{self.index}]"
        return self.kind


@dataclass(frozen=True)
class Statement:
    """Base of all statements. ``text`` is the statement's own source text, for display.

    ``written_as`` is the driver command a statement was written as (``ve_driver/boot``),
    None when it was written as itself: see :mod:`pragmash.language.lowering`.
    """

    span: Span
    text: str
    written_as: str | None = field(default=None, kw_only=True)

    @property
    def kind(self) -> str:
        """The statement kind as users write it (``allocate``, ``wait``, ``driver`` …)."""
        if self.written_as is not None:
            return "driver"
        return _KINDS[type(self).__name__]


@dataclass(frozen=True)
class Allocate(Statement):
    """``allocate [N]``: N compute CPUs; None means ``$num_compute``."""

    count: Word | None = None


@dataclass(frozen=True)
class Fix(Statement):
    """``fix TARGETS via METHOD``."""

    targets: tuple[Target, ...] = ()
    method: Word | None = None


@dataclass(frozen=True)
class Boot(Statement):
    """``boot TARGETS``."""

    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class WaitClock(Statement):
    """``wait DURATION`` (``300``, ``90s``, ``5m``, ``1h``, or a variable)."""

    duration: Word | None = None


@dataclass(frozen=True)
class WaitState(Statement):
    """``wait TARGETS STATE [timeout DURATION]``."""

    targets: tuple[Target, ...] = ()
    state: str = ""
    timeout: Word | None = None
    state_span: Span | None = None  # where the state word is, for errors that point at it


@dataclass(frozen=True)
class WaitConsole(Statement):
    """``wait TARGETS console TEXT [timeout DURATION]``: ``expect`` is literal, not a pattern."""

    targets: tuple[Target, ...] = ()
    expect: Word | None = None
    timeout: Word | None = None


@dataclass(frozen=True)
class Set(Statement):
    """``set NAME = VALUE``."""

    name: str = ""
    value: Word | None = None


@dataclass(frozen=True)
class Param(Statement):
    """``param NAME = DEFAULT``: a value the recipe takes, overridable with ``--set``."""

    name: str = ""
    default: Word | None = None


@dataclass(frozen=True)
class Echo(Statement):
    """``echo WORDS…``."""

    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Include(Statement):
    """``include "file.prg"``: ``path`` as written, ``resolved`` the file read, ``body`` its statements."""

    path: str = ""
    resolved: str = ""
    body: tuple[Statement, ...] = ()


EngineOp = Literal["state", "shutdown", "destroy"]
DistroStage = Literal["pre_fix", "post_fix", "pre_boot"]


@dataclass(frozen=True)
class EngineCall(Statement):
    """``ve_driver/state|shutdown|destroy TARGETS``: one engine operation on each node."""

    op: EngineOp = "state"
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class DistroCall(Statement):
    """``vc_driver/pre_fix|post_fix|pre_boot TARGETS``: one distro driver stage alone."""

    stage: DistroStage = "pre_boot"
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class ScriptCall(Statement):
    """``ve_driver/NAME ARGS…`` or ``vc_driver/NAME ARGS…`` for a NAME pragmash has no
    stage for: a driver folder's own script, run with the words as its arguments."""

    driver: Literal["ve_driver", "vc_driver"] = "ve_driver"
    command: str = ""
    command_span: Span | None = None
    args: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Run(Statement):
    """``run CMD ARGS…``: an external command, never through a shell; refused unless allowed."""

    argv: tuple[Word, ...] = ()


_KINDS = {
    "Statement": "statement",
    "Allocate": "allocate",
    "Fix": "fix",
    "Boot": "boot",
    "WaitClock": "wait",
    "WaitState": "wait",
    "WaitConsole": "wait",
    "Set": "set",
    "Param": "param",
    "Echo": "echo",
    "Include": "include",
    "EngineCall": "driver",
    "DistroCall": "driver",
    "ScriptCall": "driver",
    "Run": "run",
}

STATEMENT_KINDS = tuple(sorted(set(_KINDS.values()) - {"statement"}))


@dataclass(frozen=True)
class Program:
    """A parsed recipe: its file, its full source text and its top-level statements."""

    file: str
    source: str
    statements: tuple[Statement, ...]
