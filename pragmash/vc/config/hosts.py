"""The site's hosts: ``[[hosts]]`` entries, or the one host of ``[engine] uri``.

A site that outgrows one hypervisor lists its libvirt hosts; one VC's nodes may then
be placed over several of them (see :mod:`pragmash.store.placement`)::

    [[hosts]]
    name = "vmc-0"                            # used in the ledger, journal and status
    uri = "qemu+ssh://root@vmc-0/system"      # any libvirt URI
    cpus = 32                                 # optional: else libvirt's count of the host's CPUs
    memory = 65536                            # optional, MiB: else libvirt's
    storage = "shared"                        # "shared" (the head node's paths reach it) | "pool"
    pool = "pragmash"                         # storage = "pool": the libvirt storage pool
    pool_path = "/var/lib/libvirt/images/pragmash"  # its folder on the host, if pragmash makes it

``[engine] uri`` stays for a one-host site: that site is one implicit host named
``default`` whose CPUs are ``[resources] cpus``, so existing site configs keep
working. Giving both ``[engine] uri`` and ``[[hosts]]`` is an error naming both, as
is ``[resources] cpus`` beside ``[[hosts]]`` (each host has its own count).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal, cast

from pragmash.errors import ConfigError
from pragmash.vc.config.limits import MAX_SITE_CPUS
from pragmash.vc.config.reader import REQUIRED, Reader, describe, did_you_mean

Storage = Literal["shared", "pool"]
STORAGE_MODES: tuple[Storage, ...] = ("shared", "pool")
#: The name of a one-host site's only host (``[engine] uri``).
IMPLICIT_HOST = "default"
#: Where a ``pool`` host keeps pragmash's volumes unless it says otherwise.
DEFAULT_POOL = "pragmash"
#: The folder of that pool on the host, where pragmash defines it (a ``dir`` pool).
DEFAULT_POOL_PATH = "/var/lib/libvirt/images/pragmash"
#: Memory of a host, in MiB, beyond which a number is surely a mistake (1 PiB).
MAX_HOST_MEMORY_MIB = 1 << 30

HOST_KEYS = ("name", "uri", "cpus", "memory", "storage", "pool", "pool_path")
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_URI = re.compile(r"^[a-z][a-z0-9]*(\+[a-z0-9]+)?://[^\s/]*(/[^\s]*)?$")
_POOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def ledger_host(stored: str | None, names: Collection[str]) -> str:
    """The host a node's ledger row names, among the site's host ``names`` (in the site
    config's order; a mapping by host name looks a name up without a scan).

    A row from before placement (no host) or from the site's one-host days (``default``)
    is on the first host. Any other name the site no longer lists stays itself: a host
    renamed or removed from ``[[hosts]]`` is one pragmash cannot reach (see
    :func:`gone_host`), never silently the first host.
    """
    if not stored or (stored == IMPLICIT_HOST and stored not in names):
        return next(iter(names))
    return stored


def gone_host(host: str) -> str:
    """Why a host the ledger names but the site config does not list cannot be reached."""
    return f"the site config lists no host {host!r} any more ([[hosts]] renamed or removed?)"


@dataclass(frozen=True)
class HostConfig:
    """One libvirt host of the site, as the site config describes it.

    ``cpus`` and ``memory_mib`` are None where libvirt is to say (read when the host is
    connected); ``storage`` says how node disks reach the host: ``shared`` through the
    head node's own paths (NFS, one machine), ``pool`` through libvirt's storage API
    into the storage pool ``pool`` (a ``dir`` pool at ``pool_path``, made where missing).
    """

    name: str
    uri: str
    cpus: int | None = None
    memory_mib: int | None = None
    storage: Storage = "shared"
    pool: str = DEFAULT_POOL
    pool_path: str = DEFAULT_POOL_PATH


def check_uri(reader: Reader, key: str, uri: str) -> str:
    """A libvirt URI, or an error naming the key."""
    if not _URI.match(uri):
        raise reader.fail(
            key,
            f"expected a libvirt URI such as 'qemu:///system' or 'qemu+ssh://host/system', "
            f"got {uri!r}",
        )
    return uri


def read_hosts(value: Any, source: str) -> tuple[HostConfig, ...]:
    """Validate ``[[hosts]]``: an array of tables with unique names and URIs."""
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"expected one or more [[hosts]] tables, got {describe(value)}",
            file=source,
            key="[[hosts]]",
        )
    hosts: list[HostConfig] = []
    for index, table in enumerate(value):
        if not isinstance(table, dict):
            raise ConfigError(
                f"expected a table, got {describe(table)}", file=source, key=f"hosts[{index}]"
            )
        hosts.append(_read_host(Reader(source, "hosts", table, prefix=f"[{index}] "), table))
    seen_names: set[str] = set()
    seen_uris: dict[tuple[str, ...], str] = {}
    for index, host in enumerate(hosts):
        if host.name in seen_names:
            raise ConfigError(
                f"host name {host.name!r} is given twice; each host needs a name of its own",
                file=source,
                key=f"[hosts] [{index}] name",
            )
        where = same_host(host.uri)
        if where in seen_uris:
            raise ConfigError(
                f"hosts {seen_uris[where]!r} and {host.name!r} have the same uri "
                f"{host.uri!r} (as libvirt reads it): one host listed twice would be"
                " counted twice",
                file=source,
                key=f"[hosts] [{index}] uri",
            )
        seen_names.add(host.name)
        seen_uris[where] = host.name
    return tuple(hosts)


def same_host(uri: str) -> tuple[str, ...]:
    """What makes two URIs one host to libvirt: the driver, the machine (its name in any
    case, any user, ssh's port 22 written or not) and the path as the file system resolves
    it (``/srv/h1.xml`` and ``/srv/./h1.xml`` are one test host). Compared as strings,
    those were two hosts, each counted."""
    parts = urllib.parse.urlsplit(uri)
    driver = parts.scheme.lower().split("+")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port == 22 and driver[1:] in (["ssh"], ["libssh"], ["libssh2"]):
        port = None
    path = parts.path
    if path and not parts.hostname:
        path = os.path.realpath(path)  # a local file (test:///…) or socket
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    return (driver[0], (parts.hostname or "").lower(), str(port or ""), path, query)


def _read_host(reader: Reader, table: dict[str, Any]) -> HostConfig:
    for key in table:
        if key not in HOST_KEYS:
            raise reader.fail(key, f"unknown key{did_you_mean(key, HOST_KEYS)}")
    name = cast(str, reader.string("name", REQUIRED))
    if not HOST_NAME.match(name):
        raise reader.fail(
            "name",
            f"expected 1 to 63 letters, digits, '-' or '_', starting with a letter or digit, "
            f"got {name!r}",
        )
    uri = check_uri(reader, "uri", cast(str, reader.string("uri", REQUIRED)))
    cpus = reader.integer("cpus", None, 1, MAX_SITE_CPUS) if "cpus" in table else None
    memory = reader.integer("memory", None, 1, MAX_HOST_MEMORY_MIB) if "memory" in table else None
    storage = cast(Storage, reader.choice("storage", "shared", STORAGE_MODES))
    pool = cast(str, reader.string("pool", DEFAULT_POOL))
    if not _POOL.match(pool):
        raise reader.fail(
            "pool", f"expected a storage pool name (letters, digits, ._-), got {pool!r}"
        )
    pool_path = cast(str, reader.string("pool_path", DEFAULT_POOL_PATH))
    if not pool_path.startswith("/") or "\n" in pool_path or "//" in pool_path:
        raise reader.fail(
            "pool_path", f"expected an absolute folder on the host, got {pool_path!r}"
        )
    return HostConfig(name, uri, cpus, memory, storage, pool, pool_path)
