"""How a guest shows it has booted (``wait … up``): the tests a distro driver declares.

Apart from :mod:`pragmash.driver_api` because they are a vocabulary of their own, read
by the site config (``[up]``), the checker and the waiter alike; the driver API
re-exports every name, so drivers keep importing them from there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

UpKind = Literal["agent", "console", "port", "marker"]

#: What the bundled distros print when they have booted: a getty's login prompt on the
#: serial console (``debian12 login: ``, ``compute-0-0 login:``). Searched in each line.
#: The prompt ends its line, or the kernel's or a unit's log lines follow it on the same
#: line (``debian12 login: [   81.87] firstboot.sh[282]: …``): a guest's first-boot
#: scripts often write to the console just after getty has printed the prompt. What
#: follows the prompt is a look-ahead, so the match (shown as the proof a node is up)
#: ends at the prompt.
LOGIN_PROMPT = r"\blogin: *(?=$|\[ *\d+\.\d+\]|[\w@.-]+\[\d+\]:)"
#: The line a boot-time unit installed by ``pre_boot`` prints (see pragmash.images.marker).
UP_MARKER = "PRAGMASH-UP"


@dataclass(frozen=True)
class UpTest:
    """One way a guest shows it has booted (``wait … up``).

    ``agent``: the QEMU guest agent answers a ping through libvirt (the domain gets
    the agent's virtio channel). ``console``: a line of the serial console matches
    ``pattern`` (a Python regular expression; the login prompt by default).
    ``port``: a TCP connection to ``port`` on the node's address succeeds (the public
    address for a frontend, the private one for a compute). ``marker``: the console
    shows the ``PRAGMASH-UP`` line, which the distro driver's ``pre_boot`` installs a
    boot-time unit to print. A node is up when it is running and any of its tests pass.
    """

    kind: UpKind
    pattern: str = ""
    port: int = 0

    @property
    def spec(self) -> str:
        """The test as a site config spells it (``console:REGEX``, ``port:22``)."""
        if self.kind == "console":
            return "console" if self.pattern == LOGIN_PROMPT else f"console:{self.pattern}"
        if self.kind == "port":
            return f"port:{self.port}"
        return self.kind

    def describe(self) -> str:
        """The test in a user's words, for `pragmash check`, the REPL and step messages."""
        if self.kind == "agent":
            return "the QEMU guest agent answers"
        if self.kind == "console":
            if self.pattern == LOGIN_PROMPT:
                return "a login prompt on the serial console"
            return f"a console line matching /{self.pattern}/"
        if self.kind == "port":
            return f"TCP port {self.port} answers"
        return f"the {UP_MARKER} line on the serial console"


UP_KINDS: tuple[UpKind, ...] = ("agent", "console", "port", "marker")

#: What a distro driver that declares nothing is held to: the tests that work on
#: images that know nothing of pragmash, then the marker for images that print it.
DEFAULT_UP_TESTS: tuple[UpTest, ...] = (
    UpTest("agent"),
    UpTest("console", LOGIN_PROMPT),
    UpTest("marker"),
)


def parse_up_test(text: str) -> UpTest:
    """``agent``, ``console``, ``console:REGEX``, ``port:N`` or ``marker``; ValueError if not."""
    kind, sep, arg = text.partition(":")
    if kind == "console":
        pattern = arg if sep else LOGIN_PROMPT
        if not pattern:
            raise ValueError("'console:' needs a regular expression after the colon")
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f"{pattern!r} is not a regular expression: {err}") from None
        return UpTest("console", pattern)
    if kind == "port":
        if not (arg.isascii() and arg.isdigit()) or not 1 <= int(arg) <= 65535:
            raise ValueError(f"expected 'port:N' with N from 1 to 65535, got {text!r}")
        return UpTest("port", port=int(arg))
    if kind in ("agent", "marker") and not sep:
        return UpTest(kind)  # type: ignore[arg-type]  # narrowed by the test above
    raise ValueError(
        f"unknown up test {text!r}; expected agent, console, console:REGEX, port:N or marker"
    )


def up_tests_of(driver: object) -> tuple[UpTest, ...]:
    """The distro driver's declared ``up_tests``, or the defaults for one that declares none.

    Optional on purpose: a site's own driver (a seed script folder, an entry point
    written before ``up`` was declarable) keeps working with the defaults.
    """
    declared = getattr(driver, "up_tests", None)
    if declared is None:
        return DEFAULT_UP_TESTS
    return tuple(declared)


def describe_up_tests(tests: Iterable[UpTest]) -> str:
    """``a login prompt on the serial console, or TCP port 22 answers``."""
    return ", or ".join(t.describe() for t in tests)
