"""The site config: one TOML file saying what this site has and how to reach it.

Loaded from ``--site FILE``, else ``$PRAGMASH_SITE``, else ``~/.config/pragmash/site.toml``,
else ``/etc/pragmash/site.toml`` (:func:`find_site`); with none, the embedded demo site
(``pragmash/demo/site.toml``: libvirt's ``test:///default`` engine and the bundled demo
repository). Unknown keys and bad values are errors naming the key.

Layout (every section and key is optional unless marked *required*)::

    [engine]
    driver = "libvirt"              # engine driver name; "scripts": the site's own VE
                                    # driver folder ([drivers] ve) allocates, fixes, boots
    uri = "test:///default"         # libvirt URI: qemu:///system, qemu+ssh://host/system …
    domain_type = "auto"            # "auto" | "kvm" | "qemu"; auto falls back to qemu
    boot_parallelism = 4            # domains booted at once on each host
    graphics_listen = "loopback"    # "loopback": VNC/SPICE on 127.0.0.1 | "template": as written

    [network]
    netmask = "255.255.255.0"       # required: public netmask
    gateway = "137.110.119.1"       # required: inside the public network
    dns = "8.8.8.8"
    dns_search = "local"
    dns_domain = ""
    mac_prefix = "7a:77:6e"         # three octets, locally administered, unicast
    vlans = [2, 4094]               # [first, last] private VLAN ids, 1..4094
    default_network = "default"     # site network for vc-in bridges not in `bridges`
    bridges = { "eth0.2" = "net-a" }  # vc-in bridge -> site network (public interfaces)
    private = "isolated"            # each VC's private network: "isolated" | "ovs" | "bridge"
    private_bridge = "pragma{vlan}" # isolated: the bridge libvirt makes; bridge: the site's
    ovs_bridge = "ovsbr0"           # ovs: the site's Open vSwitch bridge (required there)
    public = [                      # required, non-empty: the public address pool
      { ip = "137.110.119.222", fqdn = "calit2-119-222.ucsd.edu" },
    ]

    [[hosts]]                       # instead of [engine] uri: a site of several hosts
    name = "vmc-0"                  # (see site_hosts.py: uri, cpus, memory, storage, pool)
    uri = "qemu+ssh://root@vmc-0/system"

    [resources]
    cpus = 64                       # CPU capacity handed to VCs (one-host sites only)
    reserve = 2                     # kept back on each host; must be < cpus
    placement = "spread"            # computes over several hosts: "spread" | "packed"
    smp = false                     # may pack several CPUs into one compute node
    max_cpus_per_node = 1

    [paths]                         # relative paths resolve against this file's folder
    state = "state"                 # ledger; default /var/lib/pragmash/SITE (the file's name)
    temp = "tmp"                    # default $XDG_CACHE_HOME/pragmash/tmp
    image_cache = "images"          # default $XDG_CACHE_HOME/pragmash/images
    repository = "/srv/vcs"         # default --base_path (a folder, or http(s)://host/repo/
                                    # with a SHA256SUMS); unset: the bundled demo repository

    [images]
    staging = "overlay"             # "overlay" (copy-on-write) | "copy"

    [vc_out]
    computes = "own"                # the /root/vc-out.xml computes boot with: "own" (each
                                    # its own file, as pragma_boot gave it and PRAGMA images'
                                    # vc-out-parser reads it) | "whole" (the VC's, the seed's)

    [drivers]
    folders = ["drivers"]           # extra driver folders (each holds driver folders)
    dialect = "seed"                # which caller the folders' scripts were written for:
                                    # "seed" | "pragma_boot-2013" | "pragma_boot-2015"
                                    # | "pragma_boot-2015-ipop" (drivers/pragma_boot/folder.py)
    dialects = { rocks6_client = "pragma_boot-2013" }  # per driver folder, over `dialect`
    ve = "kvm_rocks"                # the site's own VE driver folder (ve_driver/NAME calls it)
    ipop_url = ""                   # pragma_boot-2015-ipop: boot's IPOP_URL argument

    [recipes]
    folders = ["recipes"]           # extra recipe folders

    [policy]
    allow_run = false
    ssh_to_guests = true            # refresh/exec: ssh where a node's guest agent does not answer

    [up]                            # per VC: how its nodes show they are up
    calit2 = ["port:22"]            # overrides the distro driver's tests (see upconfig.py)

``~`` is expanded in paths. ``$PRAGMASH_STATE_DIR`` overrides the state folder of any
site (tests and throw-away runs use it). The embedded demo site keeps its state in
``$XDG_STATE_HOME/pragmash/demo`` and its temp files in ``$XDG_CACHE_HOME/pragmash/demo/tmp``
so that it never mixes with a real site's ledger.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from pragmash.driver_api import ComputeVcOut, GraphicsListen, UpTest
from pragmash.errors import ConfigError, RepositoryError
from pragmash.vc.config.delivery import DeliveryChoice, read_delivery
from pragmash.vc.config.discovery import ENV_SITE as _DISCOVERY_ENV_SITE
from pragmash.vc.config.discovery import ENV_SYSTEM_SITE, find_site
from pragmash.vc.config.hosts import IMPLICIT_HOST, HostConfig, check_uri, read_hosts
from pragmash.vc.config.limits import MAX_BOOT_PARALLELISM, MAX_NODE_CPUS, MAX_SITE_CPUS
from pragmash.vc.config.network import PublicAddress, read_network
from pragmash.vc.config.private_network import PrivateNetworkSetting
from pragmash.vc.config.reader import Reader, check_layout, describe, parse_toml
from pragmash.vc.config.state import (
    LEDGER_NAME,
    SYSTEM_STATE_DIR,
    refuse_left_behind,
    site_state_dir,
)
from pragmash.vc.config.up import up_overrides
from pragmash.vc.repository.http import DownloadLimits, check_url, is_url

__all__ = [
    "DIALECTS",
    "EMBEDDED_SOURCE",
    "ENV_SITE",
    "ENV_STATE_DIR",
    "ENV_SYSTEM_SITE",
    "SYSTEM_STATE_DIR",
    "DomainType",
    "HostConfig",
    "Placement",
    "PublicAddress",
    "SiteConfig",
    "Staging",
    "find_site",
    "load_site",
]

DomainType = Literal["kvm", "qemu", "auto"]
Staging = Literal["overlay", "copy"]
Placement = Literal["spread", "packed"]


@dataclass(frozen=True)
class SiteConfig:
    """Everything a site decides. Paths are absolute (relative ones resolve next to the file)."""

    source: str  # the file it came from, or "embedded demo site"
    engine: str
    uri: str
    domain_type: DomainType
    public_pool: tuple[PublicAddress, ...]
    netmask: str
    gateway: str
    dns: str
    dns_search: str
    dns_domain: str
    vlan_first: int
    vlan_last: int
    mac_prefix: str  # three octets, e.g. "7a:77:6e"
    cpu_capacity: int
    cpu_reserve: int
    smp: bool  # may pack several CPUs into one compute node
    max_cpus_per_node: int
    temp_dir: Path
    state_dir: Path
    image_cache: Path
    # default --base_path: a folder, or a web repository's URL (a str); None means the
    # bundled demo repository
    repository: Path | str | None
    staging: Staging = "overlay"
    computes_vc_out: ComputeVcOut = "own"  # [vc_out] computes
    boot_parallelism: int = 4
    graphics_listen: GraphicsListen = "loopback"
    bridges: dict[str, str] = field(default_factory=dict)  # vc-in bridge -> site network
    default_network: str | None = None  # site network for bridges not in `bridges`
    private_network: PrivateNetworkSetting = field(default_factory=PrivateNetworkSetting)
    driver_dirs: tuple[Path, ...] = ()
    recipe_dirs: tuple[Path, ...] = ()
    allow_run: bool = False
    #: refresh and exec may reach a node over ssh where its guest agent does not answer
    ssh_to_guests: bool = True
    embedded: bool = False
    up_overrides: dict[str, tuple[UpTest, ...]] = field(default_factory=dict)  # [up], per VC
    delivery: DeliveryChoice = field(default_factory=DeliveryChoice)  # [delivery]: seed or disk
    # [[hosts]] as given; empty for a one-host site ([engine] uri): see ``hosts``
    explicit_hosts: tuple[HostConfig, ...] = ()
    placement: Placement = "spread"  # [resources] placement: computes over several hosts
    # [drivers]: the dialect of every driver folder, and per folder name where it differs
    driver_dialect: str = "seed"
    driver_dialects: dict[str, str] = field(default_factory=dict)
    ve_folder: str | None = None  # [drivers] ve: the site's own VE driver folder's name
    ipop_url: str = ""  # [drivers] ipop_url: pragma_boot-2015-ipop boot's IPOP_URL
    # [logging]: the local syslog socket every command also logs to ("" : none), and from
    # which level (store/runlog.py)
    syslog: str = ""
    syslog_level: str = "info"
    downloads: DownloadLimits = field(default_factory=DownloadLimits)  # [downloads]

    def dialect_of(self, folder_name: str) -> str:
        """The caller the driver folder ``folder_name`` was written for."""
        return self.driver_dialects.get(folder_name, self.driver_dialect)

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / LEDGER_NAME

    @property
    def hosts(self) -> tuple[HostConfig, ...]:
        """The site's hosts: ``[[hosts]]``, or one implicit host for ``[engine] uri``.

        The implicit host's CPUs are ``[resources] cpus`` (as before hosts existed);
        its memory is not limited by placement (``--mem`` is checked as before).
        """
        if self.explicit_hosts:
            return self.explicit_hosts
        return (HostConfig(IMPLICIT_HOST, self.uri, self.cpu_capacity),)

    @property
    def multi_host(self) -> bool:
        """True when the site lists its hosts (``[[hosts]]``), even one."""
        return bool(self.explicit_hosts)


EMBEDDED_SOURCE = "embedded demo site"
ENV_SITE = _DISCOVERY_ENV_SITE
ENV_STATE_DIR = "PRAGMASH_STATE_DIR"

# Every section and its keys: the loader refuses anything else (typos hide config).
_LAYOUT: dict[str, tuple[str, ...]] = {
    "engine": ("driver", "uri", "domain_type", "boot_parallelism", "graphics_listen"),
    "network": (
        "netmask",
        "gateway",
        "dns",
        "dns_search",
        "dns_domain",
        "mac_prefix",
        "vlans",
        "default_network",
        "bridges",
        "public",
        "private",
        "private_bridge",
        "ovs_bridge",
    ),
    "resources": ("cpus", "reserve", "smp", "max_cpus_per_node", "placement"),
    "paths": ("temp", "state", "image_cache", "repository"),
    "images": ("staging",),
    "vc_out": ("computes",),
    "drivers": ("folders", "dialect", "dialects", "ve", "ipop_url"),
    "recipes": ("folders",),
    "policy": ("allow_run", "ssh_to_guests"),
    "logging": ("syslog", "syslog_level"),
    "downloads": ("deadline", "min_rate", "rate_window", "max_unsized_gib"),
}

#: Every section with fixed keys, and its keys: what the manual's site reference lists
#: (docs/site-reference.md, checked against this by tests/test_manual.py).
SITE_KEYS: Mapping[str, tuple[str, ...]] = _LAYOUT

LOG_LEVELS = ("debug", "info", "warning", "error")

#: Bounds of the ``[downloads]`` settings: a day, 1 GiB a second, 1 PiB.
_MAX_SECONDS = 86400
_MAX_RATE = 1 << 30
_MAX_UNSIZED_GIB = 1 << 20


def _read_downloads(section: Reader) -> DownloadLimits:
    """``[downloads]``: the deadlines and caps of web repositories, in whole seconds,
    bytes a second and GiB; today's values by default."""
    default = DownloadLimits()
    return DownloadLimits(
        deadline=section.integer("deadline", int(default.deadline), 1, _MAX_SECONDS),
        min_rate=section.integer("min_rate", default.min_rate, 0, _MAX_RATE),
        rate_window=section.integer("rate_window", int(default.rate_window), 1, _MAX_SECONDS),
        unsized_limit=section.integer(
            "max_unsized_gib", default.unsized_limit >> 30, 1, _MAX_UNSIZED_GIB
        )
        << 30,
    )


def _read_logging(section: Reader) -> tuple[str, str]:
    """``[logging] syslog`` (a local socket: journald and rsyslog listen on /dev/log) and
    ``syslog_level``. A socket that is missing when a command runs is said then, not here:
    the site file may be checked on another machine."""
    socket_path = section.string("syslog", "")
    if socket_path and not socket_path.startswith("/"):
        raise section.fail(
            "syslog",
            f"expected the path of a local syslog socket, such as /dev/log, got {socket_path!r}",
        )
    return socket_path, section.choice("syslog_level", "info", LOG_LEVELS)


_DRIVER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

#: ``[engine] driver`` making the site's own VE driver folder (``[drivers] ve``) the engine.
SCRIPT_ENGINE = "scripts"

#: The callers a driver folder's scripts may have been written for (see
#: :mod:`pragmash.drivers.pragma_boot.folder`, which calls each as that caller did).
DIALECTS: tuple[str, ...] = (
    "seed",
    "pragma_boot-2013",
    "pragma_boot-2015",
    "pragma_boot-2015-ipop",
)


def load_site(path: Path | None = None, env: Mapping[str, str] = os.environ) -> SiteConfig:
    """Load the site config :func:`find_site` chooses, or the embedded demo site.

    Raises ConfigError naming the file and the key (``[network] netmask``) on any mistake,
    so that a site administrator can fix the file without reading code.
    """
    path, _reason = find_site(path, env)
    if path is None:
        text = resources.files("pragmash.demo").joinpath("site.toml").read_text("utf-8")
        return _build(parse_toml(text, EMBEDDED_SOURCE), EMBEDDED_SOURCE, None, env)
    problem = path_problem(str(path))
    if problem is not None:
        raise ConfigError(
            f"cannot be the site config: {problem.replace('a folder', 'a file')}", file=str(path)
        )
    path = Path(path).expanduser()
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError("no such site config file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the site config: {exc}", file=str(path)) from None
    source = str(path.resolve())
    return _build(parse_toml(text, source), source, path.resolve().parent, env)


def _home(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    """An XDG base folder; relative values are ignored, as the XDG spec says."""
    value = env.get(var, "")
    if value and Path(value).is_absolute():
        return Path(value)
    return _home(env) / fallback


def _resolve(value: str, base: Path | None, section: Reader, name: str) -> Path:
    """A folder setting as an absolute path (relative to the config file's folder); a NUL
    or an unknown ``~user`` was a traceback from the OS or pathlib."""
    problem = path_problem(value)
    if problem is not None:
        raise section.fail(name, f"{value!r}: {problem}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return path


def path_problem(value: str) -> str | None:
    """Why ``value`` cannot be a path here (None when it can): a NUL character (no file
    name holds one) or ``~user`` naming no account on this machine."""
    if "\0" in value:
        return "holds a NUL character, which no path can: expected a folder path"
    if value.startswith("~"):
        try:
            Path(value).expanduser()
        except RuntimeError:
            user = value[1:].split("/", 1)[0]
            return f"there is no user {user!r} here (~{user}): expected a folder path"
    return None


def _build(
    data: dict[str, Any], source: str, base: Path | None, env: Mapping[str, str]
) -> SiteConfig:
    """Validate the parsed TOML into a SiteConfig; ``base`` is None for the embedded site."""
    # [up] is keyed by VC names, not a fixed set of keys: upconfig checks it (and
    # [delivery]: vc/delivery); [[hosts]]
    # is an array of tables: site_hosts checks it
    sections = check_layout(
        {k: v for k, v in data.items() if k not in ("up", "hosts", "delivery")}, source, _LAYOUT
    )

    def reader(section: str) -> Reader:
        return Reader(source, section, sections[section])

    hosts = read_hosts(data["hosts"], source) if "hosts" in data else ()
    if hosts:
        for section, key in (("engine", "uri"), ("resources", "cpus")):
            if key in sections[section]:
                raise ConfigError(
                    f"[{section}] {key} and [[hosts]] are both given: with [[hosts]], each "
                    f"host says its own {'uri' if key == 'uri' else 'cpus (or libvirt does)'}; "
                    f"remove [{section}] {key}",
                    file=source,
                    key=f"[{section}] {key}",
                )
    engine = _read_engine(reader("engine"), hosts[0].uri if hosts else None)
    network = read_network(reader("network"))
    resources_ = _read_resources(reader("resources"))
    folders = _read_paths(reader("paths"), base, env, source)
    staging = cast(Staging, reader("images").choice("staging", "overlay", ("overlay", "copy")))
    computes_vc_out = cast(
        ComputeVcOut, reader("vc_out").choice("computes", "own", ("own", "whole"))
    )
    driver_dirs = tuple(
        _resolve(v, base, reader("drivers"), "folders")
        for v in reader("drivers").string_list("folders")
    )
    drivers = _read_drivers(reader("drivers"))
    recipe_dirs = tuple(
        _resolve(v, base, reader("recipes"), "folders")
        for v in reader("recipes").string_list("folders")
    )
    allow_run = reader("policy").boolean("allow_run", False)
    ssh_to_guests = reader("policy").boolean("ssh_to_guests", True)
    syslog, syslog_level = _read_logging(reader("logging"))
    downloads = _read_downloads(reader("downloads"))

    return SiteConfig(
        source=source,
        engine=engine.driver,
        uri=engine.uri,
        domain_type=engine.domain_type,
        public_pool=network.public_pool,
        netmask=network.netmask,
        gateway=network.gateway,
        dns=network.dns,
        dns_search=network.dns_search,
        dns_domain=network.dns_domain,
        vlan_first=network.vlan_first,
        vlan_last=network.vlan_last,
        mac_prefix=network.mac_prefix,
        cpu_capacity=resources_.cpus,
        cpu_reserve=resources_.reserve,
        smp=resources_.smp,
        max_cpus_per_node=resources_.max_cpus_per_node,
        temp_dir=folders.temp_dir,
        state_dir=folders.state_dir,
        image_cache=folders.image_cache,
        repository=folders.repository,
        staging=staging,
        computes_vc_out=computes_vc_out,
        boot_parallelism=engine.boot_parallelism,
        graphics_listen=engine.graphics_listen,
        bridges=network.bridges,
        default_network=network.default_network,
        private_network=network.private,
        driver_dirs=driver_dirs,
        recipe_dirs=recipe_dirs,
        allow_run=allow_run,
        ssh_to_guests=ssh_to_guests,
        embedded=base is None,
        up_overrides=up_overrides(data.get("up", {}), source),
        delivery=read_delivery(data.get("delivery", {}), source),
        explicit_hosts=hosts,
        placement=resources_.placement,
        driver_dialect=drivers.dialect,
        driver_dialects=drivers.dialects,
        ve_folder=drivers.ve,
        syslog=syslog,
        syslog_level=syslog_level,
        downloads=downloads,
        ipop_url=drivers.ipop_url,
    )


@dataclass(frozen=True)
class _Drivers:
    dialect: str
    dialects: dict[str, str]
    ve: str | None
    ipop_url: str


def _read_drivers(drv: Reader) -> _Drivers:
    """``[drivers]`` beyond ``folders``: which caller each folder's scripts expect."""
    dialect = drv.choice("dialect", "seed", DIALECTS)
    table = drv.typed(
        "dialects", {}, dict, 'a table such as { rocks6_client = "pragma_boot-2013" }'
    )
    dialects: dict[str, str] = {}
    for name, value in table.items():
        if not isinstance(value, str) or value not in DIALECTS:
            expected = " or ".join(repr(d) for d in DIALECTS)
            raise drv.fail(f"dialects.{name}", f"expected {expected}, got {describe(value)}")
        if not _DRIVER_NAME.match(name):
            raise drv.fail(f"dialects.{name}", "expected a driver folder's name")
        dialects[name] = value
    ve = drv.string("ve", None)
    if ve is not None and not _DRIVER_NAME.match(ve):
        raise drv.fail("ve", f"expected a driver folder's name such as 'kvm_rocks', got {ve!r}")
    return _Drivers(dialect, dialects, ve, cast(str, drv.string("ipop_url", "")))


@dataclass(frozen=True)
class _Engine:
    driver: str
    uri: str
    domain_type: DomainType
    boot_parallelism: int
    graphics_listen: GraphicsListen


def _read_engine(eng: Reader, first_host_uri: str | None) -> _Engine:
    """``[engine]``; with ``[[hosts]]`` the site's ``uri`` is the first host's (for messages)."""
    driver = cast(str, eng.string("driver", "libvirt"))
    if not _DRIVER_NAME.match(driver):
        raise eng.fail("driver", f"expected a driver name such as 'libvirt', got {driver!r}")
    uri = first_host_uri or check_uri(eng, "uri", cast(str, eng.string("uri", "test:///default")))
    domain_type = cast(DomainType, eng.choice("domain_type", "auto", ("auto", "kvm", "qemu")))
    graphics = cast(
        GraphicsListen, eng.choice("graphics_listen", "loopback", ("loopback", "template"))
    )
    return _Engine(
        driver,
        uri,
        domain_type,
        eng.integer("boot_parallelism", 4, 1, MAX_BOOT_PARALLELISM),
        graphics,
    )


@dataclass(frozen=True)
class _Resources:
    cpus: int
    reserve: int
    smp: bool
    max_cpus_per_node: int
    placement: Placement


def _read_resources(res: Reader) -> _Resources:
    cpus = res.integer("cpus", 64, 1, MAX_SITE_CPUS)
    reserve = res.integer("reserve", 2, 0)
    if reserve >= cpus:
        raise res.fail("reserve", f"expected fewer than cpus ({cpus}), got {reserve}")
    return _Resources(
        cpus,
        reserve,
        res.boolean("smp", False),
        res.integer("max_cpus_per_node", 1, 1, MAX_NODE_CPUS),
        cast(Placement, res.choice("placement", "spread", ("spread", "packed"))),
    )


@dataclass(frozen=True)
class _Folders:
    state_dir: Path
    temp_dir: Path
    image_cache: Path
    repository: Path | str | None


def _read_paths(paths: Reader, base: Path | None, env: Mapping[str, str], src: str) -> _Folders:
    """``[paths]``, with XDG defaults (a real site's ledger: :mod:`~pragmash.vc.config.state`);
    the embedded demo site keeps apart from real sites."""
    if base is None:
        state_dir = _xdg(env, "XDG_STATE_HOME", ".local/state") / "pragmash" / "demo"
        cache = _xdg(env, "XDG_CACHE_HOME", ".cache") / "pragmash"
        temp_dir = cache / "demo" / "tmp"
        image_cache = cache / "images"
    else:
        state_dir = site_state_dir(src)
        cache = _xdg(env, "XDG_CACHE_HOME", ".cache") / "pragmash"
        temp_dir = cache / "tmp"
        image_cache = cache / "images"
    given: dict[str, Path] = {}
    repository_url: str | None = None
    for name in ("state", "temp", "image_cache", "repository"):
        value = paths.string(name, None)
        if value is not None:
            if not value.strip():
                raise paths.fail(name, "expected a folder path, got an empty string")
            if name == "repository" and is_url(value):
                repository_url = _repository_url(paths, value)
                continue
            given[name] = _resolve(value, base, paths, name)
    if env.get(ENV_STATE_DIR):
        problem = path_problem(env[ENV_STATE_DIR])
        if problem is not None:
            raise ConfigError(f"{env[ENV_STATE_DIR]!r}: {problem}", file=f"${ENV_STATE_DIR}")
        state_dir = Path(env[ENV_STATE_DIR]).expanduser().absolute()
    elif "state" in given:
        state_dir = given["state"]
    elif base is not None and (env.get("HOME") or env.get("XDG_STATE_HOME")):
        # (an environment without either names no account: nothing to leave behind)
        per_user = _xdg(env, "XDG_STATE_HOME", ".local/state") / "pragmash"
        refuse_left_behind(paths, state_dir, per_user)
    return _Folders(
        state_dir=state_dir,
        temp_dir=given.get("temp", temp_dir),
        image_cache=given.get("image_cache", image_cache),
        repository=repository_url or given.get("repository"),
    )


def _repository_url(paths: Reader, value: str) -> str:
    """A web repository's URL, checked here so a typo is named by its key."""
    try:
        return check_url(value, "repository")
    except RepositoryError as exc:
        raise paths.fail("repository", exc.message.removeprefix("repository: ")) from None
