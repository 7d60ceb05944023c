"""The site config's ``[up]`` section: how one VC's nodes show they are up.

A distro driver declares what its guests do when booted (a login prompt, the QEMU
guest agent); a site whose images differ says so per VC, e.g.::

    [up]
    calit2 = ["port:22", "console:Rocks .* ready"]
    tiny = ["marker"]

Each key is a VC name; each value a list of tests, any of which makes a running node
``up``: ``agent``, ``console`` (a login prompt), ``console:REGEX``, ``port:N``,
``marker``. Kept out of site.py so the section's rules live in one place.
"""

from __future__ import annotations

from typing import Any

from pragmash.driver_api import UpTest, parse_up_test
from pragmash.errors import ConfigError
from pragmash.vc.formats.names import NAME_PATTERN


def up_overrides(table: Any, source: str) -> dict[str, tuple[UpTest, ...]]:
    """``[up]`` as VC name -> its tests; every mistake names the key."""
    if not isinstance(table, dict):
        raise ConfigError("expected a table [up] of VC names", file=source, key="[up]")
    overrides: dict[str, tuple[UpTest, ...]] = {}
    for vcname, value in table.items():
        key = f"[up] {vcname}"
        if not NAME_PATTERN.match(vcname):
            raise ConfigError(f"{vcname!r} is not a VC name", file=source, key=key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                'expected a non-empty list of up tests such as ["agent", "console", "port:22"]',
                file=source,
                key=key,
            )
        tests: list[UpTest] = []
        for spec in value:
            try:
                tests.append(parse_up_test(spec))
            except ValueError as err:
                raise ConfigError(str(err), file=source, key=key) from None
        overrides[vcname] = tuple(tests)
    return overrides
