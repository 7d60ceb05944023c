"""Errors as data: what went wrong, where, and what to do next.

Every problem pragmash reports is one of these. They carry enough to be rendered
by a front end (the CLI, the REPL) and never print anything themselves. The exit
status a front end uses comes from the class, so a user's mistake and a failed
step are told apart by scripts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pragmash import stages
from pragmash.textsafe import printable

# Exit statuses, documented in the manual (docs/getting-started.md) and `pragmash --help`.
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug in pragmash: please report it
EXIT_USER = 2  # bad input: recipe, vc-in.xml, vcdb, site config, command line
EXIT_STEP_FAILED = 3  # a step failed; everything was kept, the run can be resumed
EXIT_BUSY = 4  # the VC is held by another run
EXIT_INTERRUPTED = 130  # Ctrl-C; the run can be resumed


@dataclass(frozen=True)
class Span:
    """Where a statement or word sits in its recipe file (1-based lines and columns)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class PragmashError(Exception):
    """Base of every error pragmash reports to a user."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The text a front end shows: one headline, then details, then the hint."""
        text = self.message
        if self.hint:
            text += f"\n{self.hint}"
        return text


class UserError(PragmashError):
    """The user's input is wrong; nothing was changed."""

    exit_code = EXIT_USER


class RecipeError(UserError):
    """A recipe problem found at a position: syntax, unknown variable, target or command.

    Rendered as ``file:line:col: message`` followed by the source line and a caret.
    """

    def __init__(
        self, message: str, span: Span, source_line: str, *, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.span = span
        self.source_line = source_line

    def render(self) -> str:
        # the caret's padding keeps the line's own tabs, so it lines up under any tab width;
        # a control character in the line is shown escaped, never obeyed
        before = printable(self.source_line[: max(self.span.column, 1) - 1])
        caret = "".join(c if c == "\t" else " " for c in before) + "^"
        text = f"{self.span}: {self.message}\n    {printable(self.source_line)}\n    {caret}"
        if self.hint:
            text += f"\n{self.hint}"
        return text


class RecipeErrors(RecipeError):
    """Several recipe problems found in one pass, in recipe order.

    A linter reports every mistake, not the first: the parser goes on after a syntax
    error at the next line and the checker looks at every statement, so one ``check``
    shows them all. It is a RecipeError naming the first problem, so code that wants
    one position still has one; :meth:`render` shows each.
    """

    def __init__(self, problems: Sequence[RecipeError]) -> None:
        first = problems[0]
        super().__init__(first.message, first.span, first.source_line, hint=first.hint)
        self.problems = list(problems)

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


def each_problem(error: RecipeError) -> list[RecipeError]:
    """The single problems an error holds: itself, or each of several."""
    if isinstance(error, RecipeErrors):
        return [p for inner in error.problems for p in each_problem(inner)]
    return [error]


class ConfigError(UserError):
    """A site config problem, named by its file and key (``site.toml: [network] netmask``)."""

    def __init__(self, message: str, *, file: str, key: str | None = None) -> None:
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.key = key


class VcFormatError(UserError):
    """A vc-in.xml or vc-out.xml problem, named by file and element path (``/vc/frontend``)."""

    def __init__(self, message: str, *, file: str, element: str | None = None) -> None:
        where = f"{file}: {element}" if element else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.element = element


class RepositoryError(UserError):
    """The repository (``--base_path``) or its vcdb.txt does not hold what was asked."""


class LedgerError(PragmashError):
    """The ledger cannot be used: corrupted, not ours, disk full, read-only, locked, gone.

    Not the user's input and not a bug, so neither exit 2's "bad input" wording nor a
    traceback fits; the message names the ledger file and what to do. Refused before
    anything changed it exits 2; a run it stops half-way exits 3 (the front end says
    so), since the run is kept and ``resume`` continues it once the ledger is fixed.
    """

    exit_code = EXIT_USER

    def __init__(self, path: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"ledger {path}: {message}", hint=hint)
        self.path = path


class BusyError(PragmashError):
    """Another run holds the VC."""

    exit_code = EXIT_BUSY


class VcTakenError(BusyError):
    """The VC was taken from a run while it was going (a forced ``clean``).

    The run stops at once and writes nothing more: the leases, domains and journal
    are the taker's now.
    """


class StepError(PragmashError):
    """A step failed while running. Nothing is undone: domains, images and leases are kept.

    ``stage`` names the driver stage (``ve_driver/boot``, ``vc_driver/pre_boot``);
    ``output_tail`` holds the last lines of the underlying tool's output.
    """

    exit_code = EXIT_STEP_FAILED

    def __init__(
        self,
        message: str,
        *,
        stage: str,
        output_tail: list[str] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.stage = stage
        self.output_tail = list(output_tail or [])


class AllocationError(StepError):
    """Not enough resources for a request; nothing was taken."""

    def __init__(self, message: str) -> None:
        super().__init__(message, stage=stages.ALLOCATE)


class AgentUnreachable(StepError):
    """The QEMU guest agent of a node did not answer: no agent channel, no agent started
    in the guest, a domain not running, or an engine without agents. The caller may go
    another way (ssh); an agent that answered with an error is a plain StepError."""

    def __init__(self, message: str) -> None:
        super().__init__(message, stage=stages.GUEST_AGENT)


class Interrupted(PragmashError):
    """Ctrl-C during a step; the step is marked interrupted and can be resumed."""

    exit_code = EXIT_INTERRUPTED
