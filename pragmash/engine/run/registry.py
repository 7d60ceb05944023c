"""Finding drivers by name: bundled ``drivers/``, the site's driver folders, entry points.

A distro driver is named by vc-in.xml's ``<driver>`` (``rocks6_client``); the engine
by the site config (``[engine] driver = "libvirt"``). Lookup order for a name:

1. a folder of that name in one of the site's trusted driver folders — a seed
   pragma_boot driver folder of executables, wrapped by the script adapter;
2. the bundled module ``pragmash.drivers.distros.<name>`` exposing ``distro_driver()``;
3. an installed package's entry point in the ``pragmash.drivers`` group.

An engine module exposes ``engine_driver(site)`` the same way, so the registry
names no driver class and a second engine needs only its module in ``ENGINES``; for a
site with ``[[hosts]]`` it also exposes ``host_engine(uri)``, one engine per host,
which :class:`~pragmash.engine.hosts.router.HostRouter` puts behind one engine.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pragmash.drivers as bundled
from pragmash.driver_api import DistroDriver, EngineDriver
from pragmash.drivers.pragma_boot.folder import ScriptFolderDriver, refuse_unfit, site_ve_folder
from pragmash.engine.hosts.router import HostRouter
from pragmash.errors import UserError
from pragmash.vc.config.site import SCRIPT_ENGINE, SiteConfig

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

ENGINES = {
    "libvirt": "pragmash.drivers.libvirt.engine",
    SCRIPT_ENGINE: "pragmash.drivers.pragma_boot.engine",
}


def load_engine(site: SiteConfig) -> EngineDriver:
    """The site's engine driver, not yet connected (``check()`` connects).

    A site with ``[[hosts]]`` gets a :class:`HostRouter` over one engine per host
    (``router.engine_of_host(name)`` is a host's own connected engine).
    """
    module_name = ENGINES.get(site.engine)
    if module_name is None:
        raise UserError(
            f"{site.source}: [engine] driver: unknown engine {site.engine!r}; "
            f"known engines: {', '.join(sorted(ENGINES))}"
        )
    module = importlib.import_module(module_name)
    if site.multi_host:
        if not hasattr(module, "host_engine"):
            raise UserError(
                f"{site.source}: [[hosts]]: the engine {site.engine!r} cannot drive several "
                "hosts; give one [engine] uri instead"
            )
        return HostRouter(site, {h.name: module.host_engine(h.uri) for h in site.hosts})
    engine: EngineDriver = module.engine_driver(site)
    return engine


def load_ve_folder(site: SiteConfig) -> ScriptFolderDriver | None:
    """The site's own VE driver folder (``[drivers] ve``), inspected; None when not set."""
    return site_ve_folder(site)


def bundled_distro_drivers() -> list[str]:
    """Names of the distro drivers that ship with pragmash."""
    folder = Path(next(iter(bundled.__path__))) / "distros"
    names = []
    for path in sorted(folder.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "def distro_driver(" in text:
            names.append(path.stem)
    return names


def load_distro(name: str, site: SiteConfig, *, where: str) -> DistroDriver:
    """The distro driver ``name``; ``where`` says who named it, for the error message."""
    if not _NAME.match(name):
        raise UserError(f"{where}: {name!r} is not a valid driver name (letters, digits, _)")
    for folder in site.driver_dirs:
        candidate = folder / name
        if candidate.is_dir():
            wrapped = ScriptFolderDriver(
                candidate, dialect=site.dialect_of(name), ipop_url=site.ipop_url
            )
            refuse_unfit(wrapped, "vc", f"{where} names {candidate}")
            return wrapped
    try:
        module = importlib.import_module(f"pragmash.drivers.distros.{name}")
    except ModuleNotFoundError:
        module = None
    if module is not None and hasattr(module, "distro_driver"):
        bundled: DistroDriver = module.distro_driver()
        return bundled
    from importlib import metadata  # only for a driver not bundled (about 30 ms to import)

    for ep in metadata.entry_points(group="pragmash.drivers"):
        if ep.name == name:
            factory: Any = ep.load()
            loaded: DistroDriver = factory()
            return loaded
    known = bundled_distro_drivers()
    raise UserError(
        f"{where}: unknown distro driver {name!r}; known drivers: {', '.join(known)}"
        + (
            f"; site driver folders searched: {', '.join(map(str, site.driver_dirs))}"
            if site.driver_dirs
            else ""
        )
    )
