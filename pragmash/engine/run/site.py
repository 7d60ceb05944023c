"""Opening the site config a command works with: the first thing every command does.

Kept apart from :mod:`pragmash.engine.run.opening` (which re-exports it), so a command
that only reads the site and its ledger (``list``, ``status``) does not load what a
run needs to open a VC: the runtime, the recipe language, the image provisioning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pragmash.store.runlog import send_to_syslog
from pragmash.vc.config.site import SiteConfig, load_site

log = logging.getLogger("pragmash.site")


def open_site(path: str | None) -> SiteConfig:
    """The site config from ``--site`` (None: ``$PRAGMASH_SITE``, else the demo site).

    Every command opens its site here, so a site's ``[logging] syslog`` starts here too.
    """
    config = load_site(Path(path) if path else None, os.environ)
    if config.syslog:
        problem = send_to_syslog(config.syslog, config.syslog_level)
        if problem:
            log.warning("%s ([logging] syslog in %s)", problem, config.source)
    return config
