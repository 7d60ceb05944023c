"""The recipe language as frozen dataclasses.

The parser turns Lark's tree into these once; everything after it (checks, the
interpreter, the REPL, the journal) works on them and never sees a Lark object.
Every node carries its :class:`~pragmash.errors.Span` so any later problem can be
reported at its position in the recipe.

One walker over statements (:class:`StatementVisitor`, at the end): a method per
statement class, checked by mypy. The executor (:class:`~pragmash.engine.run.runtime.Runtime`),
the planner of ``--dry-run`` (:mod:`~pragmash.engine.run.plan`) and the checker
(:mod:`~pragmash.language.checker`) each give every statement its meaning by
subclassing it. Dispatch is double: a statement's ``accept`` calls its own method of
the visitor, so there is no ``isinstance`` chain and no method looked up by name.
Adding a statement (CONTRIBUTING.md): a grammar rule, its dataclass here (with
``accept``), an abstract method on the visitor; mypy then names every walker that
does not say what the statement means ("Cannot instantiate abstract class …").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar, overload

from pragmash.errors import Span
from pragmash.language.vocabulary import (
    ALLOCATE_COUNT_VARIABLE,
    DEFAULT_EXEC_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
)

A = TypeVar("A")
R = TypeVar("R")


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

    @overload
    def expand(self, value_of: Callable[[VarRef], str]) -> str: ...

    @overload
    def expand(self, value_of: Callable[[VarRef], str | None]) -> str | None: ...

    def expand(self, value_of: Callable[[VarRef], str | None]) -> str | None:
        """The word with its variables substituted: the one substitution every walker uses.

        ``value_of`` is the walker's policy for a variable: the run's value (or an error
        for an unknown one), the plan's (or ``$NAME`` as written), the checker's (None
        where it is only known at run time, which makes the whole word None).
        """
        out: list[str] = []
        for part in self.parts:
            value = part if isinstance(part, str) else value_of(part)
            if value is None:
                return None
            out.append(value)
        return "".join(out)

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

    @abstractmethod
    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        """Call this statement's own method of ``visitor`` (see :class:`~pragmash.language.ast.StatementVisitor`)."""


@dataclass(frozen=True)
class MadeStep(Statement):
    """A step pragmash makes, not a recipe's (a scale's, a power command's): run by its
    own executor, never handed to a statement visitor."""

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        raise TypeError(f"{type(self).__name__} is no recipe statement: {self.text!r}")


@dataclass(frozen=True)
class OnNodes(Statement):
    """A statement that works on nodes: it needs an ``allocate`` before it."""

    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Allocate(Statement):
    """``allocate [N]``: N compute CPUs; None means ``$num_compute``."""

    count: Word | None = None

    @property
    def count_word(self) -> Word:
        """The count, or ``$num_compute`` when it is left out (the session sets it, to 0
        unless ``--num_compute`` or a ``param`` says otherwise)."""
        if self.count is not None:
            return self.count
        return Word((VarRef(ALLOCATE_COUNT_VARIABLE, self.span),), self.span)

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_allocate(self, arg)


@dataclass(frozen=True)
class Fix(OnNodes):
    """``fix TARGETS via METHOD``."""

    method: Word | None = None

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_fix(self, arg)


@dataclass(frozen=True)
class Boot(OnNodes):
    """``boot TARGETS``."""

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_boot(self, arg)


@dataclass(frozen=True)
class WaitClock(Statement):
    """``wait DURATION`` (``300``, ``90s``, ``5m``, ``1h``, or a variable)."""

    duration: Word | None = None

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_wait_clock(self, arg)


@dataclass(frozen=True)
class WaitState(OnNodes):
    """``wait TARGETS STATE [timeout DURATION]``."""

    state: str = ""
    timeout: Word | None = None
    state_span: Span | None = None  # where the state word is, for errors that point at it

    @property
    def timeout_word(self) -> Word:
        """``timeout``, or the language's default when it is left out."""
        return self.timeout or Word((DEFAULT_WAIT_TIMEOUT,), self.span)

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_wait_state(self, arg)


@dataclass(frozen=True)
class WaitConsole(OnNodes):
    """``wait TARGETS console TEXT [timeout DURATION]``: ``expect`` is literal, not a pattern."""

    expect: Word | None = None
    timeout: Word | None = None

    @property
    def timeout_word(self) -> Word:
        """``timeout``, or the language's default when it is left out."""
        return self.timeout or Word((DEFAULT_WAIT_TIMEOUT,), self.span)

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_wait_console(self, arg)


@dataclass(frozen=True)
class Set(Statement):
    """``set NAME = VALUE``."""

    name: str = ""
    value: Word | None = None

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_set(self, arg)


@dataclass(frozen=True)
class Param(Statement):
    """``param NAME = DEFAULT``: a value the recipe takes, overridable with ``--set``."""

    name: str = ""
    default: Word | None = None

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_param(self, arg)


@dataclass(frozen=True)
class Echo(Statement):
    """``echo WORDS…``."""

    words: tuple[Word, ...] = ()

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_echo(self, arg)


@dataclass(frozen=True)
class Include(Statement):
    """``include "file.prg"``: ``path`` as written, ``resolved`` the file read, ``body`` its statements."""

    path: str = ""
    resolved: str = ""
    body: tuple[Statement, ...] = ()

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_include(self, arg)


EngineOp = Literal["state", "shutdown", "destroy"]
DistroStage = Literal["pre_fix", "post_fix", "pre_boot"]


@dataclass(frozen=True)
class EngineCall(OnNodes):
    """``ve_driver/state|shutdown|destroy TARGETS``: one engine operation on each node."""

    op: EngineOp = "state"

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_engine_call(self, arg)


@dataclass(frozen=True)
class DistroCall(OnNodes):
    """``vc_driver/pre_fix|post_fix|pre_boot TARGETS``: one distro driver stage alone."""

    stage: DistroStage = "pre_boot"

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_distro_call(self, arg)


@dataclass(frozen=True)
class ScriptCall(Statement):
    """``ve_driver/NAME ARGS…`` or ``vc_driver/NAME ARGS…`` for a NAME pragmash has no
    stage for: a driver folder's own script, run with the words as its arguments."""

    driver: Literal["ve_driver", "vc_driver"] = "ve_driver"
    command: str = ""
    command_span: Span | None = None
    args: tuple[Word, ...] = ()

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_script_call(self, arg)


@dataclass(frozen=True)
class Run(Statement):
    """``run CMD ARGS…``: an external command, never through a shell; refused unless allowed."""

    argv: tuple[Word, ...] = ()

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_run(self, arg)


@dataclass(frozen=True)
class Exec(OnNodes):
    """``exec TARGETS "CMD ARGS…" [timeout DURATION]``: a command inside each target node.

    ``argv`` is the quoted command split into words by the parser (never by a shell,
    here or in the guest); refused unless allowed, as ``run`` is.
    """

    argv: tuple[Word, ...] = ()
    timeout: Word | None = None

    @property
    def timeout_word(self) -> Word:
        """``timeout``, or the language's default when it is left out."""
        return self.timeout or Word((DEFAULT_EXEC_TIMEOUT,), self.span)

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_exec(self, arg)


ScaleEvent = Literal["grow", "shrink"]


@dataclass(frozen=True)
class Handler(Statement):
    """``on grow|shrink STATEMENT``: a statement the recipe's own run keeps for ``pragmash
    scale``, which runs it (``body``) as a step of every scale that grows (or shrinks)
    the VC, after the running nodes received their new vc-out."""

    event: ScaleEvent = "grow"
    body: Statement | None = None

    def accept(self, visitor: StatementVisitor[A, R], arg: A) -> R:
        return visitor.visit_handler(self, arg)


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
    "Exec": "exec",
    "Handler": "on",
}

STATEMENT_KINDS = tuple(sorted(set(_KINDS.values()) - {"statement"}))


@dataclass(frozen=True)
class Program:
    """A parsed recipe: its file, its full source text and its top-level statements."""

    file: str
    source: str
    statements: tuple[Statement, ...]


class StatementVisitor(ABC, Generic[A, R]):
    """What each statement means to one walker.

    ``A`` is what each visit is handed besides the statement (the step's reporter for
    the executor, the list of actions for the planner, the checker's context); ``R``
    is what a visit gives back.
    """

    def visit(self, stmt: Statement, arg: A) -> R:
        return stmt.accept(self, arg)

    @abstractmethod
    def visit_allocate(self, stmt: Allocate, arg: A) -> R: ...

    @abstractmethod
    def visit_fix(self, stmt: Fix, arg: A) -> R: ...

    @abstractmethod
    def visit_boot(self, stmt: Boot, arg: A) -> R: ...

    @abstractmethod
    def visit_wait_clock(self, stmt: WaitClock, arg: A) -> R: ...

    @abstractmethod
    def visit_wait_state(self, stmt: WaitState, arg: A) -> R: ...

    @abstractmethod
    def visit_wait_console(self, stmt: WaitConsole, arg: A) -> R: ...

    @abstractmethod
    def visit_set(self, stmt: Set, arg: A) -> R: ...

    @abstractmethod
    def visit_param(self, stmt: Param, arg: A) -> R: ...

    @abstractmethod
    def visit_echo(self, stmt: Echo, arg: A) -> R: ...

    @abstractmethod
    def visit_include(self, stmt: Include, arg: A) -> R: ...

    @abstractmethod
    def visit_engine_call(self, stmt: EngineCall, arg: A) -> R: ...

    @abstractmethod
    def visit_distro_call(self, stmt: DistroCall, arg: A) -> R: ...

    @abstractmethod
    def visit_script_call(self, stmt: ScriptCall, arg: A) -> R: ...

    @abstractmethod
    def visit_run(self, stmt: Run, arg: A) -> R: ...

    @abstractmethod
    def visit_exec(self, stmt: Exec, arg: A) -> R: ...

    @abstractmethod
    def visit_handler(self, stmt: Handler, arg: A) -> R: ...
