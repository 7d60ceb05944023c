"""Where a real site keeps its ledger: one folder per site, whoever runs the command.

A per-user default (``$XDG_STATE_HOME``) gave two admins running one site file from their
own accounts a ledger each, and both handed out the same address and VLAN. A real site's
ledger is ``[paths] state``, else ``/var/lib/pragmash/SITE`` (SITE: the site file's name
without ``.toml``); the embedded demo site alone keeps a per-user one.
"""

from __future__ import annotations

from pathlib import Path

from pragmash.vc.config.reader import Reader

#: Where a real site keeps its ledger unless ``[paths] state`` says: one folder per site.
SYSTEM_STATE_DIR = Path("/var/lib/pragmash")
LEDGER_NAME = "ledger.sqlite3"


def site_state_dir(site_file: str) -> Path:
    """The default state folder of the site config ``site_file``."""
    return SYSTEM_STATE_DIR / Path(site_file).stem


def refuse_left_behind(paths: Reader, state_dir: Path, per_user: Path) -> None:
    """Refuse to start the site's ledger while this account's ledger from before (the old
    per-user default ``per_user``) holds leases that would be handed out again."""
    if (per_user / LEDGER_NAME).exists() and not (state_dir / LEDGER_NAME).exists():
        raise paths.fail(
            "state",
            f"not set, and this account's ledger from before is at {per_user}, not in the "
            f'site\'s default {state_dir}: set state = "{per_user}" to go on with it, or '
            f"move it to {state_dir} (shared by the site's admins)",
        )
