"""Which site config a command uses when ``--site`` does not say: the discovery order.

``--site``, else ``$PRAGMASH_SITE``, else the user's ``~/.config/pragmash/site.toml``,
else the system's ``/etc/pragmash/site.toml``, else the embedded demo site, as other
tools that keep a system-wide and a per-user config do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_SITE = "PRAGMASH_SITE"
ENV_SYSTEM_SITE = "PRAGMASH_SYSTEM_SITE"  # where the system-wide file is (tests move it)
SYSTEM_SITE = "/etc/pragmash/site.toml"
SEARCHED = "--site, $PRAGMASH_SITE, ~/.config/pragmash/site.toml, /etc/pragmash/site.toml"


def user_site(env: Mapping[str, str]) -> Path:
    """The per-user site config: ``$XDG_CONFIG_HOME/pragmash/site.toml``."""
    return _config_home(env) / "pragmash" / "site.toml"


def find_site(path: Path | None, env: Mapping[str, str] = os.environ) -> tuple[Path | None, str]:
    """Which site config a command uses, and why, in the order an administrator expects.

    ``--site``, else ``$PRAGMASH_SITE``, else the user's ``~/.config/pragmash/site.toml``,
    else the system's ``/etc/pragmash/site.toml``, else (None) the embedded demo site.
    Only the first two may name a missing file (an error); the others count when present.
    """
    if path is not None:
        return Path(path), "--site"
    if env.get(ENV_SITE):
        return Path(env[ENV_SITE]), f"${ENV_SITE}"
    mine = user_site(env)
    if mine.is_file():
        return mine, "the user's default (~/.config/pragmash/site.toml)"
    system = Path(env.get(ENV_SYSTEM_SITE) or SYSTEM_SITE)
    if system.is_file():
        return system, f"the system-wide default ({system})"
    return None, f"none found ({SEARCHED})"


def _config_home(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME`` when absolute (as the XDG spec says), else ``~/.config``."""
    value = env.get("XDG_CONFIG_HOME", "")
    if value and Path(value).is_absolute():
        return Path(value)
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".config"
