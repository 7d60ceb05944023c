"""The libvirt engine driver (``ve_driver`` = libvirt), for any libvirt URI.

``qemu:///system`` boots real guests; ``test:///default`` is libvirt's own
in-process test driver (real API, no daemon), which the demo site and the tier-2
tests use. The driver speaks only in engine states (``running``, ``shut off``);
whether a guest has finished booting (``up``) is for others to judge.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from lxml import etree

from pragmash import domain_states, outcomes, stages
from pragmash.driver_api import (
    HostImages,
    HostInfo,
    NetworkState,
    NodePlan,
    PrivateNetworkPlan,
    StageContext,
    StageResult,
)
from pragmash.drivers.lazy_import import lazy_module, loaded
from pragmash.drivers.libvirt import agent as libvirt_agent
from pragmash.drivers.libvirt import console as libvirt_console
from pragmash.drivers.libvirt import network as libvirt_network
from pragmash.drivers.libvirt import power as libvirt_power
from pragmash.drivers.libvirt import storage as libvirt_storage
from pragmash.drivers.libvirt.host import host_info_from_capabilities as host_info_from_capabilities
from pragmash.drivers.libvirt.host import kvm_usable as kvm_usable
from pragmash.drivers.libvirt.words import missing_test_file, shutoff_reasons, state_words
from pragmash.errors import StepError
from pragmash.images.libvirt_xml.domain import render_domain, with_uuid
from pragmash.textsafe import printable
from pragmash.vc.config.private_network import network_name
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.xmlsafe import safe_parser

if TYPE_CHECKING:
    import libvirt
    import libvirt_qemu
else:
    libvirt = lazy_module("libvirt")
    libvirt_qemu = lazy_module("libvirt_qemu")

log = logging.getLogger("pragmash.libvirt")

POLL_SECONDS = 0.2
AGENT_PING = '{"execute": "guest-ping"}'
AGENT_TIMEOUT = 2  # seconds libvirt waits for the agent's answer
REMOTE_TAIL_BYTES = 256 * 1024  # of a console log read through a host's storage pool

# libvirt's constants are read on first use: importing this module does not load
# libvirt (see .lazy_import).


@functools.cache
def _undefine_flags() -> tuple[int, ...]:
    """Undefine flag sets, richest first: older drivers (and the test driver) refuse some."""
    return (
        libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
        | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
        libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    )


@functools.cache
def _quiet_libvirt() -> None:
    """libvirt prints every error to stderr by default; pragmash reports them itself.

    Once per process, before the first connection (which is what loads libvirt, under
    :func:`.lazy_import.loaded`'s lock: several hosts are connected from several threads).
    """
    loaded(libvirt).registerErrorHandler(_ignore_error, None)


def _ignore_error(_ctx: Any, _err: Any) -> None:
    return None


def _libvirt_message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


def _safe_xml(text: str) -> etree._Element:
    return etree.fromstring(text.encode("utf-8"), safe_parser())


class LibvirtEngine:
    """The engine driver over one libvirt connection, opened on first use."""

    name = "libvirt"

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._conn: libvirt.virConnect | None = None
        self._host: HostInfo | None = None
        self._lock = threading.Lock()
        self._host_lock = threading.Lock()  # boot workers render domains at once
        # domain handles by name, kept from a boot or a look-up: a state poll is then one
        # call, not two. A handle whose domain went away (or was redefined) fails with
        # VIR_ERR_NO_DOMAIN and is dropped; the name is then looked up anew.
        self._domains: dict[str, libvirt.virDomain] = {}

    # -- connection ---------------------------------------------------------

    @property
    def simulated(self) -> bool:
        """libvirt's test driver keeps domains in memory: there are no real disks to touch."""
        return self.uri.startswith("test:")

    def host_memory_mib(self) -> int:
        """The host's memory in MiB (libvirt's node info), for ``--mem`` and allocation checks."""
        try:
            return int(self._connection().getInfo()[1])
        except libvirt.libvirtError as exc:
            raise StepError(
                f"cannot read the memory of {self.uri}: {_libvirt_message(exc)}",
                stage=stages.CONNECT,
            ) from exc

    def host_cpus(self) -> int:
        """The host's CPUs (libvirt's node info), for placement over several hosts."""
        try:
            return int(self._connection().getInfo()[2])
        except libvirt.libvirtError as exc:
            raise StepError(
                f"cannot read the CPUs of {self.uri}: {_libvirt_message(exc)}",
                stage=stages.CONNECT,
            ) from exc

    def _connection(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is None:
                _quiet_libvirt()
                missing = missing_test_file(self.uri)
                if missing is not None:
                    raise StepError(
                        f"cannot connect to libvirt at {self.uri}: {missing}",
                        stage=stages.CONNECT,
                        hint="check the site config's engine uri",
                    )
                try:
                    started = time.monotonic()
                    self._conn = libvirt.open(self.uri)
                    log.debug("connected to %s in %.3f s", self.uri, time.monotonic() - started)
                except libvirt.libvirtError as exc:
                    raise StepError(
                        f"cannot connect to libvirt at {self.uri}: {_libvirt_message(exc)}",
                        stage=stages.CONNECT,
                        hint="check the site config's engine uri and that libvirtd is running",
                    ) from exc
            return self._conn

    def check(self) -> None:
        """Connect now, so a bad URI fails before any step does work."""
        self._connection()

    def close(self) -> None:
        """Drop the connection; the next call opens a new one."""
        with self._lock:
            self._domains.clear()
            if self._conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    self._conn.close()
                self._conn = None

    def host_info(self) -> HostInfo:
        """What the host offers (emulator, KVM), read once from libvirt's capabilities
        (once also when several boot workers render their first domains at once)."""
        with self._host_lock:
            if self._host is None:
                try:
                    caps = self._connection().getCapabilities()
                except libvirt.libvirtError as exc:
                    raise StepError(
                        f"cannot read capabilities of {self.uri}: {_libvirt_message(exc)}",
                        stage=stages.CONNECT,
                    ) from exc
                self._host = host_info_from_capabilities(caps)
            return self._host

    # -- private networks (see pragmash.drivers.libvirt.network) ----------------

    def check_private_network(self, plan: PrivateNetworkPlan) -> None:
        """Refuse a bridge that clashes, or a site bridge that is missing (ConfigError)."""
        libvirt_network.check_private_network(self._connection(), plan, self.uri)

    def ensure_private_network(self, plan: PrivateNetworkPlan) -> StageResult:
        """Define and start the VC's network unless it runs already."""
        message = libvirt_network.ensure_private_network(self._connection(), plan)
        return StageResult(
            outcome=outcomes.DONE, message=message, products={"private_network": plan.attach}
        )

    def private_network_state(self, plan: PrivateNetworkPlan) -> NetworkState:
        return libvirt_network.private_network_state(self._connection(), plan)

    def remove_private_network(self, vcname: str) -> bool:
        return libvirt_network.remove_private_network(self._connection(), network_name(vcname))

    def open_console(self, name: str) -> libvirt_console.LibvirtConsole:
        """An interactive stream on the domain's serial console (``pragmash console``)."""
        _quiet_libvirt()
        return libvirt_console.open_console(self.uri, name)

    # -- lookups ------------------------------------------------------------

    def _lookup(self, name: str, stage: str) -> libvirt.virDomain | None:
        try:
            return self._connection().lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise StepError(
                f"cannot look up domain {name} on {self.uri}: {_libvirt_message(exc)}",
                stage=stage,
            ) from exc

    @staticmethod
    def _state_word(dom: libvirt.virDomain) -> str:
        code = dom.state()[0]
        return state_words().get(code, f"unknown ({code})")

    def state(self, name: str) -> str:
        """The domain's state in virsh's words, or ``absent``."""
        kept = self._domains.get(name)
        if kept is not None:
            try:
                return self._state_word(kept)
            except libvirt.libvirtError:  # gone or redefined since: look it up anew
                self._domains.pop(name, None)
        dom = self._lookup(name, stages.STATE)
        if dom is None:
            return domain_states.ABSENT
        try:
            word = self._state_word(dom)
            self._domains[name] = dom
            return word
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return domain_states.ABSENT
            raise StepError(
                f"cannot read the state of {name}: {_libvirt_message(exc)}",
                stage=stages.STATE,
            ) from exc

    def states(self, names: Sequence[str]) -> dict[str, str]:
        """Each named domain's state from one listing of the host's domains and their
        states (``getAllDomainStats``); one not listed is ``absent``."""
        try:
            listed = self._connection().getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)
        except libvirt.libvirtError as exc:
            raise StepError(
                f"cannot read the domains' states on {self.uri}: {_libvirt_message(exc)}",
                stage=stages.STATE,
            ) from exc
        words = state_words()
        found = {dom.name(): (dom, stats) for dom, stats in listed}
        out: dict[str, str] = {}
        for name in names:
            if name not in found:
                out[name] = domain_states.ABSENT
                continue
            dom, stats = found[name]
            code = stats.get("state.state")
            out[name] = words.get(code, f"unknown ({code})")
            self._domains[name] = dom  # the next call on it needs no look-up
        return out

    def state_reason(self, name: str) -> str:
        """Why a shut-off or crashed domain is so, in words; ``""`` where libvirt says nothing."""
        dom = self._lookup(name, stages.STATE)
        if dom is None:
            return "no domain of that name is defined on the engine"
        try:
            code, reason = dom.state()
        except libvirt.libvirtError:
            return ""
        if code == libvirt.VIR_DOMAIN_SHUTOFF:
            return shutoff_reasons().get(reason, "")
        if code == libvirt.VIR_DOMAIN_CRASHED:
            return "the guest crashed (kernel panic or a fatal error)"
        return ""

    def agent_answers(self, name: str) -> bool:
        """A ``guest-ping`` through libvirt: True only when the agent inside replies.

        No agent, no channel, an agent not started yet, or an engine without agents
        (the test driver) all read as "not yet"; the caller keeps waiting.
        """
        dom = self._lookup(name, stages.STATE)
        if dom is None:
            return False
        try:
            loaded(libvirt_qemu).qemuAgentCommand(dom, AGENT_PING, AGENT_TIMEOUT, 0)
        except libvirt.libvirtError:
            return False
        return True

    def agent_command(self, name: str, command: str, timeout: int) -> str:
        """One guest agent command (:class:`~pragmash.driver_api.GuestAgents`)."""
        return libvirt_agent.agent_command(
            self._lookup(name, "guest-agent"), name, command, timeout
        )

    def list_domains(self, prefix: str) -> list[str]:
        """Names of defined domains (running or not) that start with ``prefix``."""
        try:
            domains = self._connection().listAllDomains(0)
        except libvirt.libvirtError as exc:
            raise StepError(
                f"cannot list domains on {self.uri}: {_libvirt_message(exc)}",
                stage=stages.STATE,
            ) from exc
        return sorted(d.name() for d in domains if d.name().startswith(prefix))

    def domain_xml(self, name: str) -> str | None:
        """The live domain XML, or None when the domain is absent."""
        dom = self._lookup(name, stages.STATE)
        if dom is None:
            return None
        try:
            xml: str = dom.XMLDesc(0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise StepError(
                f"cannot read the XML of {name}: {_libvirt_message(exc)}",
                stage=stages.STATE,
            ) from exc
        return xml

    def console_log_path(self, name: str) -> Path | None:
        """The file the domain's serial console writes to, when it has one."""
        xml = self.domain_xml(name)
        if xml is None:
            return None
        for serial in _safe_xml(xml).findall("devices/serial"):
            log = serial.find("log")  # a pty serial logging to a file (what pragmash makes)
            if log is not None and log.get("file"):
                return Path(log.get("file", ""))
            source = serial.find("source")
            if serial.get("type") == "file" and source is not None and source.get("path"):
                return Path(source.get("path", ""))
        return None

    def console_tail(self, name: str, lines: int = 20) -> list[str]:
        """The last ``lines`` lines of the serial console file; [] when there is none."""
        path = self.console_log_path(name)
        if path is None or lines <= 0:
            return []
        try:
            with path.open("r", encoding="utf-8", errors="replace") as handle:
                return [printable(line.rstrip("\r\n")) for line in deque(handle, maxlen=lines)]
        except FileNotFoundError:
            return self._remote_console_tail(path, lines)
        except OSError:
            return []

    def _remote_console_tail(self, path: Path, lines: int) -> list[str]:
        """A console log on a host whose disks the head node does not share (in its pool)."""
        if self.simulated:
            return []
        data = libvirt_storage.read_tail(self._connection(), str(path), REMOTE_TAIL_BYTES)
        if data is None:
            return []
        text = data.decode("utf-8", errors="replace").splitlines()
        return [printable(line) for line in text[-lines:]]

    def host_images(
        self, pool: str, pool_path: str, work_dir: Path, *, lock_dir: Path
    ) -> HostImages:
        """This host's storage pool for node disks (a site's ``storage = "pool"`` host)."""
        return libvirt_storage.LibvirtStorage(
            self._connection, pool, pool_path, work_dir, lock_dir=lock_dir
        )

    def remove_host_file(self, path: str) -> bool:
        """Delete a file pragmash left in a host's pool folder (a node's console log)."""
        return libvirt_storage.remove_file(self._connection(), path)

    # -- life cycle ---------------------------------------------------------

    def boot(self, node: NodePlan, ctx: StageContext) -> StageResult:
        """Define and start the node's domain; a running one is left as it is.

        A new domain costs two calls (define, start; its UUID is pragmash's own, put in
        the XML, not asked for afterwards): libvirt refuses to define a name
        it has already, so only then is the domain looked up and what it is handled.
        """
        uuid = str(uuid4())  # ours, so the result needs no UUIDString call
        xml = render_domain(node, self.host_info(), uuid=uuid)
        self._domains.pop(node.name, None)
        log.info("define and start %s on %s", node.name, self.uri)
        try:
            dom = self._connection().defineXML(xml)
        except libvirt.libvirtError:  # that name is defined already (or the XML is refused)
            return self._boot_existing(node, xml, ctx)
        try:
            dom.create()
        except libvirt.libvirtError as exc:
            raise self._boot_failed(node, exc) from exc
        self._domains[node.name] = dom
        return StageResult(
            outcome=outcomes.DONE,
            message=f"{node.name} started",
            products={"domain": node.name, "uuid": uuid},
        )

    def _boot_existing(self, node: NodePlan, xml: str, ctx: StageContext) -> StageResult:
        """The slow path of :meth:`boot`: a domain of that name exists, or defining failed."""
        stage = stages.BOOT
        existing = self._lookup(node.name, stage)
        try:
            if existing is not None and existing.isActive():
                state = self._state_word(existing)
                return StageResult(
                    outcome=outcomes.DONE,
                    message=f"{node.name} already {state}",
                    products={"domain": node.name, "uuid": existing.UUIDString()},
                )
            if existing is not None:
                # libvirt refuses to redefine a name under a new UUID: keep the old one
                ctx.note(f"{node.name} is defined but {self._state_word(existing)}: redefining")
                xml = with_uuid(xml, existing.UUIDString())
            log.info("redefine and start %s on %s", node.name, self.uri)
            dom = self._connection().defineXML(xml)
            dom.create()
            uuid: str = dom.UUIDString()
            self._domains[node.name] = dom
        except libvirt.libvirtError as exc:
            raise self._boot_failed(node, exc) from exc
        return StageResult(
            outcome=outcomes.DONE,
            message=f"{node.name} started",
            products={"domain": node.name, "uuid": uuid},
        )

    def _boot_failed(self, node: NodePlan, exc: libvirt.libvirtError) -> StepError:
        return StepError(
            f"libvirt could not boot {node.name}: {_libvirt_message(exc)}",
            stage=stages.BOOT,
            output_tail=self.console_tail(node.name),
            hint=f"inspect it with: virsh -c {self.uri} dumpxml {node.name}",
        )

    def shutdown(self, name: str, timeout: float, ctx: StageContext) -> bool:
        """Ask the guest to power off (ACPI) and wait up to ``timeout`` seconds."""
        dom = self._lookup(name, stages.SHUTDOWN)
        if dom is None:
            return True
        try:
            if not dom.isActive():
                return True
            log.info("shutdown (ACPI) %s on %s", name, self.uri)
            dom.shutdown()
        except libvirt.libvirtError as exc:
            raise StepError(
                f"libvirt could not shut down {name}: {_libvirt_message(exc)}",
                stage=stages.SHUTDOWN,
            ) from exc
        start = time.monotonic()
        while True:
            state = self.state(name)
            if state in (domain_states.SHUT_OFF, domain_states.ABSENT):
                return True
            elapsed = time.monotonic() - start
            if elapsed >= timeout or ctx.cancelled():
                return False
            ctx.progress(elapsed, timeout, f"waiting for {name} to stop")
            time.sleep(min(POLL_SECONDS, max(timeout - elapsed, 0.0)))

    # -- PowerControl (stop, start): libvirt_power's, on the looked-up domain ----

    def request_shutdown(self, name: str) -> bool:
        log.info("shutdown (ACPI) %s on %s", name, self.uri)
        return libvirt_power.request_shutdown(self._lookup(name, stages.SHUTDOWN), name)

    def power_off(self, name: str) -> bool:
        log.info("power off %s on %s", name, self.uri)
        return libvirt_power.power_off(self._lookup(name, stages.POWER_OFF), name)

    def start(self, name: str) -> bool:
        dom = self._lookup(name, stages.START)
        log.info("start %s on %s", name, self.uri)
        return libvirt_power.start(dom, name, self.uri, self.console_tail)

    def destroy(self, name: str) -> None:
        """Force the domain off and forget its definition; an absent domain is fine."""
        stage = stages.DESTROY
        self._domains.pop(name, None)
        dom = self._lookup(name, stage)
        if dom is None:
            return
        try:
            log.info("destroy and undefine %s on %s", name, self.uri)
            if dom.isActive():
                dom.destroy()
            self._undefine(dom)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return
            raise StepError(
                f"libvirt could not destroy {name}: {_libvirt_message(exc)}", stage=stage
            ) from exc

    @staticmethod
    def _undefine(dom: libvirt.virDomain) -> None:
        for flags in _undefine_flags():
            try:
                dom.undefineFlags(flags)
                return
            except libvirt.libvirtError as exc:
                if exc.get_error_code() not in (
                    libvirt.VIR_ERR_INVALID_ARG,
                    libvirt.VIR_ERR_NO_SUPPORT,
                ):
                    raise
        dom.undefine()


def engine_driver(site: SiteConfig) -> LibvirtEngine:
    """The registry's way in (``[engine] driver = "libvirt"``): the site's URI, not connected."""
    return LibvirtEngine(site.uri)


def host_engine(uri: str) -> LibvirtEngine:
    """One host of a ``[[hosts]]`` site (the registry's way in), not connected."""
    return LibvirtEngine(uri)
