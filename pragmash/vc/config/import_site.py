"""pragma_boot's site configuration read without running it, written as a pragmash site.toml.

A site moving from pragma_boot has ``site_conf.conf`` and ``kvm_rocks.conf`` (Python
files pragma_boot ran with ``execfile``) and, from 2013, ``drivers/kvm_rocks/
net_conf.conf`` (shell assignments). Running them would run whatever they hold, so
they are *parsed*: Python with :mod:`ast` (top-level ``NAME = literal`` and
``NAME = range(a, b)`` only; anything else is reported and not read), the shell file
line by line (``NAME=value``, quoted or not; a value that would expand — ``$``,
backquotes — is refused). What maps is written as a commented site.toml; what does
not (an FQDN per public IP, which kvm_rocks.conf never held; clonezilla or cloudfront
repositories; ``additional_interfaces``; ``diskdir``) is named in the file, at the
place it belongs, with what to fill in — never guessed. Placeholders that must be
replaced end in ``.invalid`` so they cannot be mistaken for real names.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pragmash.errors import ConfigError

PLACEHOLDER_DOMAIN = "invalid"  # RFC 2606: a name no resolver will ever answer


@dataclass
class Settings:
    """The assignments read from one file, by name, with the line each came from."""

    source: str
    values: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # "line N: NAME is not a literal …"

    def where(self, name: str) -> str:
        return f"{Path(self.source).name}:{self.lines[name]} {name}"


def read_python_conf(path: Path) -> Settings:
    """``NAME = literal`` and ``NAME = range(a, b)`` of a Python config file, never executed."""
    text = _read(path)
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(
            f"not Python that pragma_boot could have read: {exc.msg}",
            file=f"{path}:{exc.lineno}:{exc.offset}",
        ) from None
    out = Settings(str(path))
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            out.skipped.append(f"line {node.lineno}: not a simple assignment, not read")
            continue
        name = node.targets[0].id
        try:
            value = _literal(node.value)
        except ValueError as exc:
            out.skipped.append(f"line {node.lineno}: {name}: {exc}, not read")
            continue
        out.values[name] = value
        out.lines[name] = node.lineno
    return out


def _literal(node: ast.expr) -> Any:
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and not node.keywords
        and 1 <= len(node.args) <= 2
    ):
        bounds = [ast.literal_eval(a) for a in node.args]
        if not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            raise ValueError("range() of something other than integers")
        return range(*bounds)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("not a literal (only literals and range(a, b) are read)") from None


_SHELL = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def read_shell_conf(path: Path) -> Settings:
    """``NAME=value`` lines of a shell config file (2013 ``net_conf.conf``), never executed."""
    out = Settings(str(path))
    for number, line in enumerate(_read(path).splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _SHELL.match(line)
        if m is None:
            out.skipped.append(f"line {number}: not NAME=value, not read")
            continue
        name, raw = m.group(1), m.group(2)
        if "$" in raw or "`" in raw:
            out.skipped.append(f"line {number}: {name}: the value would expand ($ or `), not read")
            continue
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}", file=f"{path}:{number}") from None
        if len(words) > 1:
            out.skipped.append(f"line {number}: {name}: more than one word, not read")
            continue
        out.values[name] = words[0] if words else ""
        out.lines[name] = number
    return out


def _read(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}", file=str(path)) from None


# -- writing site.toml -----------------------------------------------------------------


@dataclass
class Imported:
    """The site.toml text and what the administrator must fill in or decide."""

    text: str
    fill_in: list[str]  # each: what, where in site.toml, what to put there
    notes: list[str]  # read but not needed by pragmash, or not read at all


def _q(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value)


def _want(settings: Settings | None, name: str, kind: type | tuple[type, ...], words: str) -> Any:
    """``name``'s value if ``settings`` has it (checked to be ``kind``), else None."""
    if settings is None or name not in settings.values:
        return None
    value = settings.values[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(
            f"{name}: expected {words}, got {value!r}",
            file=settings.source,
            key=f"line {settings.lines[name]} {name}",
        )
    return value


def build_site_toml(
    site_conf: Settings | None, kvm_rocks: Settings | None, net_conf: Settings | None
) -> Imported:
    """The site.toml equivalent to pragma_boot's files (any of them may be absent)."""
    fill: list[str] = []
    notes: list[str] = []
    head = ["# pragmash site config imported from pragma_boot's configuration by"]
    head.append("# `pragmash import-site` (nothing was executed). Read every FILL IN below.")
    for s in (site_conf, kvm_rocks, net_conf):
        if s is not None:
            head.append(f"#   read: {s.source}")
            notes += [f"{Path(s.source).name} {skip}" for skip in s.skipped]
    out = [*head, ""]

    # [engine] and [[hosts]]
    ve = _want(site_conf, "site_ve_driver", str, "a driver name")
    if ve is not None and ve != "kvm_rocks":
        notes.append(
            f"{site_conf.where('site_ve_driver') if site_conf else ''} = {ve!r}: pragmash's "
            "libvirt engine replaces kvm_rocks only; for another engine keep its folder and "
            "name it in [drivers] (folders, ve, dialects)"
        )
    containers = _want(kvm_rocks, "available_containers", str, "a space separated string")
    hosts = containers.split() if containers else []
    out.append("[engine]")
    where = f"  # replaces {site_conf.where('site_ve_driver')}" if ve and site_conf else ""
    out.append(f'driver = "libvirt"{where}')
    if not hosts:
        out.append('uri = "qemu:///system"')
        if kvm_rocks is not None:
            out.append("# FILL IN: the hosts (available_containers is not set): see [[hosts]]")
            fill.append(
                "[[hosts]]: kvm_rocks.conf sets no available_containers (pragma_boot then "
                "used every vm-container Rocks knew): list them as [[hosts]] "
                '(name = "vm-container-0-0", uri = "qemu+ssh://root@vm-container-0-0/system") '
                "and remove [engine] uri, or keep uri for one host"
            )
    out.append("")
    for host in hosts:
        out += [
            f"[[hosts]]  # from {kvm_rocks.where('available_containers') if kvm_rocks else ''}",
            f"name = {_q(host)}",
            f"uri = {_q(f'qemu+ssh://root@{host}/system')}",
            "",
        ]

    # [network]
    out += _network(kvm_rocks, net_conf, fill, notes)

    # [resources]
    reserved = _want(kvm_rocks, "num_processors_reserved", int, "an integer")
    if reserved is not None and kvm_rocks is not None:
        where = kvm_rocks.where("num_processors_reserved")
        out += ["[resources]", f"reserve = {reserved}  # {where}: CPUs kept on each host", ""]

    # [paths]
    out += _paths(site_conf, kvm_rocks, fill, notes)
    return Imported("\n".join(out).rstrip("\n") + "\n", fill, notes)


def _network(
    kvm: Settings | None, net: Settings | None, fill: list[str], notes: list[str]
) -> list[str]:
    out = ["[network]"]
    sources = [s for s in (kvm, net) if s is not None]

    def pick(kvm_name: str, net_name: str) -> tuple[str | None, str]:
        for s, name in ((kvm, kvm_name), (net, net_name)):
            if s is not None and name in s.values:
                return _want(s, name, str, "a string"), s.where(name)
        return None, ""

    for key, kvm_name, net_name in (
        ("netmask", "netmask", "netmask"),
        ("gateway", "gw", "gw"),
        ("dns", "dns", "dns"),
    ):
        value, where = pick(kvm_name, net_name)
        if value is None:
            if key != "dns":
                fill.append(f"[network] {key}: none of the files sets it ({kvm_name}=)")
                out.append(f'# FILL IN: {key} = "…" (required)')
        else:
            out.append(f"{key} = {_q(value)}  # {where}")
    vlans = _want(kvm, "vlans", (range, list), "range(a, b) or a list")
    if vlans is not None:
        ids = sorted(vlans)
        if not ids or ids != list(range(ids[0], ids[-1] + 1)):
            fill.append(
                f"[network] vlans: {kvm.where('vlans') if kvm else ''} is not one unbroken "
                "range; pragmash takes [first, last]: choose one"
            )
            out.append("# FILL IN: vlans = [FIRST, LAST] (pragma_boot's were not one range)")
        else:
            where = kvm.where("vlans") if kvm else ""
            out.append(f"vlans = [{ids[0]}, {ids[-1]}]  # {where} (range's end is exclusive)")
    if vlans is None:
        notes.append("no vlans in the files: pragmash's default VLAN range applies; check it")
    extra = _want(kvm, "additional_interfaces", dict, "a dict")
    if extra:
        fill.append(
            f"additional_interfaces {extra!r} ({kvm.where('additional_interfaces') if kvm else ''}): "
            "pragmash has no such setting; map each network with [network] bridges "
            '(vc-in bridge -> site network, e.g. { "openflow" = "ovs-net" })'
        )
        out.append(
            f"# FILL IN: additional_interfaces {extra!r} has no pragmash setting: see bridges"
        )

    entries: list[tuple[str, str | None, str]] = []
    ips = _want(kvm, "public_ips", list, "a list of addresses")
    for ip in ips or []:
        if not isinstance(ip, str):
            raise ConfigError(
                f"public_ips: expected addresses as strings, got {ip!r}",
                file=kvm.source if kvm else "",
            )
        entries.append((ip, None, kvm.where("public_ips") if kvm else ""))
    if net is not None and "public_ip" in net.values:
        ip = _want(net, "public_ip", str, "an address")
        fqdn = _want(net, "fqdn", str, "a name") if "fqdn" in net.values else None
        if ip not in [e[0] for e in entries]:
            entries.append((ip, fqdn, net.where("public_ip")))
        else:
            entries = [(i, fqdn if i == ip else f, w) for i, f, w in entries]
    if not entries:
        fill.append("[network] public: no public_ips (or public_ip) in the files")
        out.append('# FILL IN: public = [ { ip = "…", fqdn = "…" } ] (required)')
    else:
        out.append("public = [")
        for ip, fqdn, where in entries:
            if fqdn:
                out.append(f"  {{ ip = {_q(ip)}, fqdn = {_q(fqdn)} }},  # {where}")
            else:
                holder = f"fill-in-{ip.replace('.', '-')}.{PLACEHOLDER_DOMAIN}"
                out.append(
                    f"  {{ ip = {_q(ip)}, fqdn = {_q(holder)} }},  # FILL IN the FQDN DNS gives {ip}"
                )
                fill.append(
                    f"[network] public: the FQDN of {ip} ({where} lists addresses only): "
                    f"replace {holder}"
                )
        out.append("]")
    out.append("")
    if not sources:
        notes.append("no kvm_rocks.conf or net_conf.conf given: the network is all FILL IN")
    return out


def _paths(
    site_conf: Settings | None, kvm: Settings | None, fill: list[str], notes: list[str]
) -> list[str]:
    out = ["[paths]"]
    if site_conf is not None:
        temp = _want(site_conf, "temp_directory", str, "a folder")
        if temp:
            out.append(f"temp = {_q(temp)}  # {site_conf.where('temp_directory')}")
        if "log_directory" in site_conf.values:
            notes.append(
                f"{site_conf.where('log_directory')}: pragmash keeps each run's log in its "
                "journal (the ledger) and each stage's in the VC's temp folder; not used"
            )
        repo = _want(site_conf, "repository_settings", dict, "a dict")
        where = site_conf.where("repository_settings") if repo is not None else ""
        kind = (repo or {}).get("repository_class")
        if kind == "local" and repo and repo.get("repository_dir"):
            out.append(f"repository = {_q(str(repo['repository_dir']))}  # {where}")
        elif kind == "http" and repo and repo.get("repository_url"):
            out.append(f"repository = {_q(str(repo['repository_url']))}  # {where}")
            fill.append(
                f"[paths] repository: {repo['repository_url']} must serve a SHA256SUMS beside "
                "vcdb.txt for pragmash (pragma_boot's http repository did not need one)"
            )
        elif repo is not None:
            fill.append(
                f"[paths] repository: repository_class {kind!r} ({where}) has no pragmash "
                "equivalent: give a folder holding vcdb.txt (its images synced there), or "
                "an http(s) URL with a SHA256SUMS"
            )
            out.append(f'# FILL IN: repository = "…" (pragma_boot\'s class was {kind!r})')
        if repo and repo.get("vcdb_filename", "vcdb.txt") != "vcdb.txt":
            fill.append(
                f"vcdb_filename {repo['vcdb_filename']!r} ({where}): pragmash reads vcdb.txt; "
                "rename the file (or link it)"
            )
    diskdir = _want(kvm, "diskdir", str, "a folder")
    if diskdir:
        fill.append(
            f"diskdir {diskdir!r} ({kvm.where('diskdir') if kvm else ''}): pragmash stages "
            "each VC's disks in its temp folder; put [paths] temp on that storage if it must be"
        )
    if len(out) == 1:
        out.append("# (no paths in the files: pragmash's defaults apply)")
    return out
