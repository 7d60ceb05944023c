"""Reading a TOML config key by key, with errors that name the file and the key.

A site administrator edits the site config by hand; every mistake (a typo in a
section or key name, a string where a number belongs, a missing required key)
must name ``[section] key`` and say what was expected, so the file can be fixed
without reading code. The site config's loader builds on these pieces.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Mapping
from typing import Any, cast

from pragmash.errors import ConfigError

#: Default for a key that has none: reading it when absent is an error.
REQUIRED: Any = object()

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)$")


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML to a dict; a syntax error becomes ``file:line:col: invalid TOML: …``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = source
        found = _TOML_POSITION.search(message)
        if found:
            where = f"{source}:{found.group(1)}:{found.group(2)}"
            message = message[: found.start()].rstrip()
        raise ConfigError(f"invalid TOML: {message}", file=where) from None


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """A close match to suggest, or the list of what is allowed."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(choices)}"


class Reader:
    """Reads one section, type-checking each key and naming it in every error."""

    def __init__(self, source: str, section: str, table: dict[str, Any], prefix: str = "") -> None:
        self.source = source
        self.section = section
        self.table = table
        self.prefix = prefix  # for keys inside an array of tables: "public[0] "

    def key(self, name: str) -> str:
        return f"[{self.section}] {self.prefix}{name}"

    def fail(self, name: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.source, key=self.key(name))

    def typed(self, name: str, default: Any, kind: type, words: str) -> Any:
        if name not in self.table:
            if default is REQUIRED:
                raise self.fail(name, f"missing; expected {words}")
            return default
        value = self.table[name]
        # bool is an int in Python, but `cpus = true` is a mistake, not 1.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(name, f"expected {words}, got {describe(value)}")
        return value

    def string(self, name: str, default: Any = None) -> Any:
        return self.typed(name, default, str, "a string")

    def integer(self, name: str, default: Any, minimum: int, maximum: int | None = None) -> int:
        """An integer key within bounds; an absurd value is refused here, not deep in a run."""
        value = cast(int, self.typed(name, default, int, "an integer"))
        if value < minimum:
            raise self.fail(name, f"expected an integer >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(name, f"expected an integer <= {maximum}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return cast(bool, self.typed(name, default, bool, "true or false"))

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = cast(str, self.string(name, default))
        if value not in choices:
            expected = " or ".join(repr(c) for c in choices)
            raise self.fail(name, f"expected {expected}, got {value!r}")
        return value

    def ip(self, name: str, default: Any = None) -> Any:
        value = self.string(name, default)
        if value is None:
            return None
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise self.fail(name, f"expected an IPv4 address, got {value!r}") from None

    def string_list(self, name: str) -> list[str]:
        value = self.typed(name, [], list, "a list of strings")
        for item in value:
            if not isinstance(item, str):
                raise self.fail(name, f"expected a list of strings, got {describe(item)} in it")
        return cast(list[str], value)


def describe(value: object) -> str:
    """A TOML value's type in words, for "expected X, got Y"."""
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }
    for kind, word in names.items():
        if isinstance(value, kind):
            return f"{word} ({value!r})" if kind in (bool, int, float, str) else word
    return type(value).__name__


def check_layout(
    data: dict[str, Any], source: str, layout: Mapping[str, tuple[str, ...]]
) -> dict[str, dict[str, Any]]:
    """Refuse unknown sections and keys (a typo would hide config); every section, filled."""
    for section, table in data.items():
        if section not in layout:
            raise ConfigError(
                f"unknown section{did_you_mean(section, tuple(layout))}",
                file=source,
                key=f"[{section}]",
            )
        if not isinstance(table, dict):
            raise ConfigError(
                f"expected a table [{section}], got {describe(table)}",
                file=source,
                key=f"[{section}]",
            )
        for key in table:
            if key not in layout[section]:
                raise ConfigError(
                    f"unknown key{did_you_mean(key, layout[section])}",
                    file=source,
                    key=f"[{section}] {key}",
                )
    return {section: data.get(section, {}) for section in layout}
