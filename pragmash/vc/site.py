"""The site config: one TOML file saying what this site has and how to reach it.

Loaded from ``--site FILE`` or ``$PRAGMASH_SITE``; with neither, the embedded demo
site (``pragmash/demo/site.toml``: libvirt's ``test:///default`` engine and the
bundled demo repository). Unknown keys and bad values are errors naming the key.

Layout (every section and key is optional unless marked *required*)::

    [engine]
    driver = "libvirt"              # engine driver name
    uri = "test:///default"         # libvirt URI: qemu:///system, qemu+ssh://host/system …
    domain_type = "auto"            # "auto" | "kvm" | "qemu"; auto falls back to qemu
    boot_parallelism = 4            # domains booted at once

    [network]
    netmask = "255.255.255.0"       # required: public netmask
    gateway = "137.110.119.1"       # required: inside the public network
    dns = "8.8.8.8"
    dns_search = "local"
    dns_domain = ""
    mac_prefix = "7a:77:6e"         # three octets, locally administered, unicast
    vlans = [2, 4094]               # [first, last] private VLAN ids, 1..4094
    default_network = "default"     # site network for vc-in bridges not in `bridges`
    bridges = { "eth0.2" = "net-a" }  # vc-in bridge name -> site network
    public = [                      # required, non-empty: the public address pool
      { ip = "137.110.119.222", fqdn = "calit2-119-222.ucsd.edu" },
    ]

    [resources]
    cpus = 64                       # CPU capacity handed to VCs
    reserve = 2                     # kept back for the host; must be < cpus
    smp = false                     # may pack several CPUs into one compute node
    max_cpus_per_node = 1

    [paths]                         # relative paths resolve against this file's folder
    state = "state"                 # ledger; default $XDG_STATE_HOME/pragmash
    temp = "tmp"                    # default $XDG_CACHE_HOME/pragmash/tmp
    image_cache = "images"          # default $XDG_CACHE_HOME/pragmash/images
    repository = "/srv/vcs"         # default --base_path (a folder, or http(s)://host/repo/
                                    # with a SHA256SUMS); unset: the bundled demo repository

    [images]
    staging = "overlay"             # "overlay" (copy-on-write) | "copy"

    [drivers]
    folders = ["drivers"]           # extra driver folders

    [recipes]
    folders = ["recipes"]           # extra recipe folders

    [policy]
    allow_run = false

``~`` is expanded in paths. ``$PRAGMASH_STATE_DIR`` overrides the state folder of any
site (tests and throw-away runs use it). The embedded demo site keeps its state in
``$XDG_STATE_HOME/pragmash/demo`` and its temp files in ``$XDG_CACHE_HOME/pragmash/demo/tmp``
so that it never mixes with a real site's ledger.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from pragmash.errors import ConfigError, RepositoryError
from pragmash.vc.http import check_url, is_url

DomainType = Literal["kvm", "qemu", "auto"]
Staging = Literal["overlay", "copy"]


@dataclass(frozen=True)
class PublicAddress:
    """One public address the site can give a VC's frontend."""

    ip: str
    fqdn: str


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
    boot_parallelism: int = 4
    bridges: dict[str, str] = field(default_factory=dict)  # vc-in bridge -> site network
    default_network: str | None = None  # site network for bridges not in `bridges`
    driver_dirs: tuple[Path, ...] = ()
    recipe_dirs: tuple[Path, ...] = ()
    allow_run: bool = False
    embedded: bool = False

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.sqlite3"


EMBEDDED_SOURCE = "embedded demo site"
ENV_SITE = "PRAGMASH_SITE"
ENV_STATE_DIR = "PRAGMASH_STATE_DIR"

# Every section and its keys: the loader refuses anything else (typos hide config).
_LAYOUT: dict[str, tuple[str, ...]] = {
    "engine": ("driver", "uri", "domain_type", "boot_parallelism"),
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
    ),
    "resources": ("cpus", "reserve", "smp", "max_cpus_per_node"),
    "paths": ("temp", "state", "image_cache", "repository"),
    "images": ("staging",),
    "drivers": ("folders",),
    "recipes": ("folders",),
    "policy": ("allow_run",),
}

_URI = re.compile(r"^[a-z][a-z0-9]*(\+[a-z0-9]+)?://[^\s/]*(/[^\s]*)?$")
_DRIVER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_FQDN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_MAC_PREFIX = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){2}$")
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)$")


def load_site(path: Path | None = None, env: Mapping[str, str] = os.environ) -> SiteConfig:
    """Load the site config: ``path``, else ``$PRAGMASH_SITE``, else the embedded demo site.

    Raises ConfigError naming the file and the key (``[network] netmask``) on any mistake,
    so that a site administrator can fix the file without reading code.
    """
    if path is None and env.get(ENV_SITE):
        path = Path(env[ENV_SITE])
    if path is None:
        text = resources.files("pragmash.demo").joinpath("site.toml").read_text("utf-8")
        return _build(_parse(text, EMBEDDED_SOURCE), EMBEDDED_SOURCE, None, env)
    path = Path(path).expanduser()
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError("no such site config file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the site config: {exc}", file=str(path)) from None
    source = str(path.resolve())
    return _build(_parse(text, source), source, path.resolve().parent, env)


def _parse(text: str, source: str) -> dict[str, Any]:
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


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(choices)}"


class _Reader:
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
            if default is _REQUIRED:
                raise self.fail(name, f"missing; expected {words}")
            return default
        value = self.table[name]
        # bool is an int in Python, but `cpus = true` is a mistake, not 1.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(name, f"expected {words}, got {_describe(value)}")
        return value

    def string(self, name: str, default: Any = None) -> Any:
        return self.typed(name, default, str, "a string")

    def integer(self, name: str, default: Any, minimum: int) -> int:
        value = cast(int, self.typed(name, default, int, "an integer"))
        if value < minimum:
            raise self.fail(name, f"expected an integer >= {minimum}, got {value}")
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
                raise self.fail(name, f"expected a list of strings, got {_describe(item)} in it")
        return cast(list[str], value)


_REQUIRED: Any = object()


def _describe(value: object) -> str:
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


def _check_layout(data: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    for section, table in data.items():
        if section not in _LAYOUT:
            raise ConfigError(
                f"unknown section{_did_you_mean(section, tuple(_LAYOUT))}",
                file=source,
                key=f"[{section}]",
            )
        if not isinstance(table, dict):
            raise ConfigError(
                f"expected a table [{section}], got {_describe(table)}",
                file=source,
                key=f"[{section}]",
            )
        for key in table:
            if key not in _LAYOUT[section]:
                raise ConfigError(
                    f"unknown key{_did_you_mean(key, _LAYOUT[section])}",
                    file=source,
                    key=f"[{section}] {key}",
                )
    return {section: data.get(section, {}) for section in _LAYOUT}


def _home(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    """An XDG base folder; relative values are ignored, as the XDG spec says."""
    value = env.get(var, "")
    if value and Path(value).is_absolute():
        return Path(value)
    return _home(env) / fallback


def _resolve(value: str, base: Path | None) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return path


def _build(
    data: dict[str, Any], source: str, base: Path | None, env: Mapping[str, str]
) -> SiteConfig:
    """Validate the parsed TOML into a SiteConfig; ``base`` is None for the embedded site."""
    sections = _check_layout(data, source)

    def reader(section: str) -> _Reader:
        return _Reader(source, section, sections[section])

    # [engine]
    eng = reader("engine")
    driver = cast(str, eng.string("driver", "libvirt"))
    if not _DRIVER_NAME.match(driver):
        raise eng.fail("driver", f"expected a driver name such as 'libvirt', got {driver!r}")
    uri = cast(str, eng.string("uri", "test:///default"))
    if not _URI.match(uri):
        raise eng.fail(
            "uri",
            f"expected a libvirt URI such as 'qemu:///system' or 'qemu+ssh://host/system', "
            f"got {uri!r}",
        )
    domain_type = cast(DomainType, eng.choice("domain_type", "auto", ("auto", "kvm", "qemu")))
    boot_parallelism = eng.integer("boot_parallelism", 4, 1)

    # [network]
    net = reader("network")
    netmask = cast(str, net.ip("netmask", _REQUIRED))
    try:
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        raise net.fail(
            "netmask", f"expected a netmask such as '255.255.255.0', got {netmask!r}"
        ) from None
    gateway = cast(str, net.ip("gateway", _REQUIRED))
    dns = cast(str, net.ip("dns", "8.8.8.8"))
    dns_search = cast(str, net.string("dns_search", "local"))
    dns_domain = cast(str, net.string("dns_domain", ""))
    mac_prefix = _mac_prefix(net)
    vlan_first, vlan_last = _vlans(net)
    default_network = net.string("default_network", None)
    bridges = _bridges(net)
    pool = _public_pool(net)
    # The public network is the pool's: the first address with the site netmask.
    public_net = ipaddress.IPv4Network(f"{pool[0].ip}/{prefix}", strict=False)
    if ipaddress.IPv4Address(gateway) not in public_net:
        raise net.fail(
            "gateway",
            f"{gateway} is outside the public network {public_net} "
            f"(public[0] {pool[0].ip}, netmask {netmask})",
        )
    if prefix < 31 and ipaddress.IPv4Address(gateway) in (
        public_net.network_address,
        public_net.broadcast_address,
    ):
        raise net.fail("gateway", f"{gateway} is the network or broadcast address of {public_net}")
    for number, address in enumerate(pool):
        if ipaddress.IPv4Address(address.ip) not in public_net:
            raise net.fail(
                f"public[{number}] ip",
                f"{address.ip} is outside the public network {public_net} "
                f"(gateway {gateway}, netmask {netmask})",
            )
        if address.ip == gateway:
            raise net.fail(f"public[{number}] ip", f"{address.ip} is the gateway")

    # [resources]
    res = reader("resources")
    cpus = res.integer("cpus", 64, 1)
    reserve = res.integer("reserve", 2, 0)
    if reserve >= cpus:
        raise res.fail("reserve", f"expected fewer than cpus ({cpus}), got {reserve}")
    smp = res.boolean("smp", False)
    max_cpus_per_node = res.integer("max_cpus_per_node", 1, 1)

    # [paths]
    paths = reader("paths")
    if base is None:
        state_dir = _xdg(env, "XDG_STATE_HOME", ".local/state") / "pragmash" / "demo"
        cache = _xdg(env, "XDG_CACHE_HOME", ".cache") / "pragmash"
        temp_dir = cache / "demo" / "tmp"
        image_cache = cache / "images"
    else:
        state_dir = _xdg(env, "XDG_STATE_HOME", ".local/state") / "pragmash"
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
            given[name] = _resolve(value, base)
    state_dir = given.get("state", state_dir)
    if env.get(ENV_STATE_DIR):
        state_dir = Path(env[ENV_STATE_DIR]).expanduser().absolute()
    temp_dir = given.get("temp", temp_dir)
    image_cache = given.get("image_cache", image_cache)
    repository: Path | str | None = repository_url or given.get("repository")

    staging = cast(Staging, reader("images").choice("staging", "overlay", ("overlay", "copy")))
    driver_dirs = tuple(_resolve(v, base) for v in reader("drivers").string_list("folders"))
    recipe_dirs = tuple(_resolve(v, base) for v in reader("recipes").string_list("folders"))
    allow_run = reader("policy").boolean("allow_run", False)

    return SiteConfig(
        source=source,
        engine=driver,
        uri=uri,
        domain_type=domain_type,
        public_pool=pool,
        netmask=netmask,
        gateway=gateway,
        dns=dns,
        dns_search=dns_search,
        dns_domain=dns_domain,
        vlan_first=vlan_first,
        vlan_last=vlan_last,
        mac_prefix=mac_prefix,
        cpu_capacity=cpus,
        cpu_reserve=reserve,
        smp=smp,
        max_cpus_per_node=max_cpus_per_node,
        temp_dir=temp_dir,
        state_dir=state_dir,
        image_cache=image_cache,
        repository=repository,
        staging=staging,
        boot_parallelism=boot_parallelism,
        bridges=bridges,
        default_network=default_network,
        driver_dirs=driver_dirs,
        recipe_dirs=recipe_dirs,
        allow_run=allow_run,
        embedded=base is None,
    )


def _repository_url(paths: _Reader, value: str) -> str:
    """A web repository's URL, checked here so a typo is named by its key."""
    try:
        return check_url(value, "repository")
    except RepositoryError as exc:
        raise paths.fail("repository", exc.message.removeprefix("repository: ")) from None


def _mac_prefix(net: _Reader) -> str:
    value = cast(str, net.string("mac_prefix", "7a:77:6e"))
    if not _MAC_PREFIX.match(value):
        raise net.fail("mac_prefix", f"expected three hex octets such as '7a:77:6e', got {value!r}")
    first = int(value[:2], 16)
    if first & 0x01:
        raise net.fail(
            "mac_prefix", f"{value!r} is a multicast prefix; the first octet must be even"
        )
    if not first & 0x02:
        raise net.fail(
            "mac_prefix",
            f"{value!r} is not locally administered; the first octet needs bit 0x02 set "
            "(e.g. '7a:77:6e')",
        )
    return value.lower()


def _vlans(net: _Reader) -> tuple[int, int]:
    value = net.typed("vlans", [2, 4094], list, "a list [first, last]")
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise net.fail("vlans", f"expected [first, last] with two integers, got {value!r}")
    first, last = value
    if not (1 <= first <= 4094 and 1 <= last <= 4094):
        raise net.fail("vlans", f"expected VLAN ids in 1..4094, got {value!r}")
    if first > last:
        raise net.fail("vlans", f"expected first <= last, got {value!r}")
    return first, last


def _bridges(net: _Reader) -> dict[str, str]:
    value = net.typed("bridges", {}, dict, 'a table such as { "eth0.2" = "net-a" }')
    for bridge, network in value.items():
        if not isinstance(network, str) or not network:
            raise net.fail(
                f"bridges.{bridge}", f"expected a site network name, got {_describe(network)}"
            )
    return dict(value)


def _fqdn_ok(fqdn: str) -> bool:
    name = fqdn[:-1] if fqdn.endswith(".") else fqdn
    labels = name.split(".")
    return (
        0 < len(name) <= 253
        and len(labels) >= 2
        and all(_FQDN_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )


def _public_pool(net: _Reader) -> tuple[PublicAddress, ...]:
    entries = net.typed("public", _REQUIRED, list, 'a list of { ip = "…", fqdn = "…" }')
    if not entries:
        raise net.fail("public", "the public address pool is empty; expected at least one entry")
    pool: list[PublicAddress] = []
    seen_ip: dict[str, int] = {}
    seen_fqdn: dict[str, int] = {}
    for number, entry in enumerate(entries):
        key = f"public[{number}]"
        if not isinstance(entry, dict):
            raise net.fail(key, f'expected {{ ip = "…", fqdn = "…" }}, got {_describe(entry)}')
        entry_reader = _Reader(net.source, "network", entry, prefix=f"{key} ")
        for extra in entry:
            if extra not in ("ip", "fqdn"):
                raise entry_reader.fail(extra, f"unknown key{_did_you_mean(extra, ['ip', 'fqdn'])}")
        ip = cast(str, entry_reader.ip("ip", _REQUIRED))
        fqdn = cast(str, entry_reader.string("fqdn", _REQUIRED))
        if not _fqdn_ok(fqdn):
            raise net.fail(
                f"{key} fqdn",
                f"expected a fully qualified domain name such as 'calit2-119-222.ucsd.edu', "
                f"got {fqdn!r}",
            )
        if ip in seen_ip:
            raise net.fail(f"{key} ip", f"{ip} is already public[{seen_ip[ip]}]")
        if fqdn.lower() in seen_fqdn:
            raise net.fail(f"{key} fqdn", f"{fqdn} is already public[{seen_fqdn[fqdn.lower()]}]")
        seen_ip[ip] = number
        seen_fqdn[fqdn.lower()] = number
        pool.append(PublicAddress(ip=ip, fqdn=fqdn))
    return tuple(pool)
