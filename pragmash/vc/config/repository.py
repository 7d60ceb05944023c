"""The repository a command means: ``--base_path``, else the site's, else the demo one.

``pragmash list repository``, ``check``, a run and ``history`` open it here, with the
site's download deadlines. Nothing here fetches an image (that is
:mod:`pragmash.images.provision`'s), so a command that only names VCs loads none of it.
"""

from __future__ import annotations

from pragmash.errors import UserError
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.repository.http import HttpClient
from pragmash.vc.repository.vcdb import Repository
from pragmash.vc.repository.web import open_repository


def site_repository(site: SiteConfig, spec: str | None) -> Repository:
    """The repository ``spec`` names (a folder or a URL), else the site's, else the demo one."""
    what = "--base_path" if spec else f"{site.source}: [paths] repository"
    client = HttpClient(limits=site.downloads)  # the site's [downloads] deadlines and caps
    return open_repository(spec or site.repository, site.image_cache, what=what, client=client)


def unknown_vc(site: SiteConfig, vcname: str, with_runs: list[str]) -> UserError | None:
    """ "No such VC" when neither the ledger (``with_runs``) nor the site's repository knows
    ``vcname``; None when the repository lists it (or cannot be read: then the caller
    says what the ledger knows). A typo in ``--attach`` is then called what it is."""
    try:
        repo = site_repository(site, None)
    except UserError:
        return None
    if vcname in repo.entries:
        return None
    return UserError(
        f"no such VC {vcname!r}: the ledger has no run of it and the repository "
        f"({repo.location}) does not list it; VCs with runs: {', '.join(with_runs) or 'none'}; "
        f"in the repository: {', '.join(sorted(repo.entries)) or 'none'}"
    )
