"""What the runtime asks of drivers, as small Protocols.

Two kinds of driver: the *engine* (``ve_driver``: the site's virtualization engine,
libvirt at any URI) and the *distro* driver (``vc_driver``: what one distro's images
need before fix, after fix and before boot). Both are plain objects; the runtime
hands them a :class:`NodePlan` (everything decided about one node) and a
:class:`StageContext` (where to report progress). A driver never prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol, runtime_checkable

from pragmash import domain_states, outcomes
from pragmash.up_tests import DEFAULT_UP_TESTS as DEFAULT_UP_TESTS
from pragmash.up_tests import LOGIN_PROMPT as LOGIN_PROMPT
from pragmash.up_tests import UP_KINDS as UP_KINDS
from pragmash.up_tests import UP_MARKER as UP_MARKER
from pragmash.up_tests import UpKind as UpKind
from pragmash.up_tests import UpTest as UpTest
from pragmash.up_tests import describe_up_tests as describe_up_tests
from pragmash.up_tests import parse_up_test as parse_up_test
from pragmash.up_tests import up_tests_of as up_tests_of

#: The state an engine that cannot tell (a site's VE driver scripts) gives every node;
#: its ``state_reason`` says why. Waits and ``status`` treat it apart from libvirt's.
#: (pragmash.domain_states.UNKNOWN, named here too for drivers written against this API.)
UNKNOWN_STATE: Final = domain_states.UNKNOWN

Role = Literal["frontend", "compute"]
GraphicsListen = Literal["loopback", "template"]

PrivateMode = Literal["isolated", "ovs", "bridge"]


@dataclass(frozen=True)
class PrivateNetworkPlan:
    """A VC's own private network, as the site's ``[network] private`` mode makes it.

    Every VC gets one, on its VLAN, because every Rocks VC uses the same private
    addresses: two VCs on one shared network answer each other's ARP. ``network`` is
    the libvirt network pragmash defines for the VC (``isolated``: libvirt makes the
    bridge ``bridge``; ``ovs``: over the site's Open vSwitch bridge ``bridge``, tagged
    with ``vlan``), or None where the private interfaces join the site's own per-VLAN
    bridge directly (``bridge``). ``setting`` names the site setting that chose
    ``bridge``, so that an engine's complaint about it points at the file to fix.
    """

    vcname: str
    mode: PrivateMode
    vlan: int
    bridge: str
    network: str | None
    setting: str
    site_source: str = ""

    @property
    def attach(self) -> str:
        """What a private interface is given: the network, or ``bridge:NAME``."""
        return self.network if self.network is not None else f"bridge:{self.bridge}"

    def describe(self) -> str:
        """One line for people: ``calit2-private (isolated, bridge pragma2, VLAN 2)``."""
        if self.mode == "isolated":
            return f"{self.network} (isolated, bridge {self.bridge}, VLAN {self.vlan})"
        if self.mode == "ovs":
            return f"{self.network} (ovs over {self.bridge}, VLAN tag {self.vlan})"
        return f"bridge {self.bridge} (site bridge for VLAN {self.vlan})"


@dataclass(frozen=True)
class SeedPlan:
    """A node whose settings go in as a NoCloud seed (a ``cidata`` volume) instead of its disk.

    ``path`` is where the head node makes the volume (the engine attaches it read-only);
    ``cloud_config`` a ``#cloud-config`` file the recipe adds (``set cloud_config = …``).
    """

    path: str
    cloud_config: str | None = None


@dataclass(frozen=True)
class NodePlan:
    """One node as allocated: the vc-in template plus what the site decided for it.

    ``macs``, ``networks`` follow the template's ``<interface>`` elements in order;
    ``disks`` follows its ``<disk device='disk'>`` elements in order (staged paths,
    or the original sources where nothing was staged).
    """

    name: str
    role: Role
    index: int | None
    cpus: int
    template_xml: str
    macs: tuple[str, ...]
    networks: tuple[str, ...]
    disks: tuple[str, ...]
    domain_type: str
    console_log: str | None = None
    private_ip: str = ""
    public_ip: str | None = None
    up_tests: tuple[UpTest, ...] = ()  # how the node shows it is up (``wait … up``)
    # SSH public keys root accepts (``--key``): pre_boot adds them to authorized_keys
    authorized_keys: tuple[str, ...] = ()
    # memory in MiB (``--mem``) instead of the template's <memory>; None keeps the template's
    memory_mib: int | None = None
    #: Where its NoCloud seed goes when the node's settings are delivered as a seed
    #: (the site's or driver's choice); None: pre_boot writes them into its disk.
    seed: SeedPlan | None = None
    # the site's [engine] graphics_listen: "loopback" puts TCP displays on 127.0.0.1,
    # "template" keeps the template's listeners as written
    graphics_listen: GraphicsListen = "loopback"
    # the site host the allocation placed the node on (``[[hosts]] name``); "" where unknown
    host: str = ""

    @property
    def address(self) -> str:
        """Where the site reaches the node: its public address, else its private one."""
        return self.public_ip or self.private_ip


@dataclass(frozen=True)
class HostInfo:
    """What the engine's host offers, as far as a domain definition cares.

    ``emulator`` is None when the engine picks its own (libvirt's default);
    ``kvm_usable`` is the engine driver's judgement (see LibvirtEngine.host_info).
    """

    emulator: str | None
    kvm_usable: bool
    arches: tuple[str, ...] = ()
    domain_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkState:
    """What the engine has of a VC's private network, for ``status`` and ``list``."""

    name: str  # the libvirt network, or the site's bridge in ``bridge`` mode
    exists: bool  # defined (a libvirt network) or present (a site bridge)
    active: bool  # started, so domains can join it
    detail: str  # in words, for people


@dataclass
class StageResult:
    """What one driver stage did, for the journal and the front end."""

    outcome: outcomes.DoneOrSkipped = outcomes.DONE
    message: str = ""
    products: dict[str, str] = field(default_factory=dict)
    output_tail: list[str] = field(default_factory=list)


#: What computes boot with (site ``[vc_out] computes``); see pragmash.vc.formats.vcout.node_vc_out.
ComputeVcOut = Literal["own", "whole"]


@dataclass
class StageContext:
    """Passed to every stage: report progress and notes without printing.

    ``note(text)`` adds a line of output; ``progress(done, total, label)`` reports
    long work (bytes staged, seconds waited). ``temp_dir`` is the VC's own folder.
    ``kvm_usable``: libguestfs and virt-v2v may use KVM (else they are forced onto TCG).
    """

    vcname: str
    temp_dir: Path
    vc_out_path: Path
    note: Callable[[str], None] = lambda _text: None
    progress: Callable[[float, float | None, str], None] = lambda _d, _t, _l: None
    #: True once the run was interrupted (Ctrl-C). The main thread gets KeyboardInterrupt
    #: by itself; a stage working in a worker thread (parallel boot) does not, so a long
    #: wait there checks this and gives up.
    cancelled: Callable[[], bool] = lambda: False
    kvm_usable: bool = False
    computes_vc_out: ComputeVcOut = "own"


@runtime_checkable
class EngineDriver(Protocol):
    """The site's virtualization engine (``ve_driver``)."""

    name: str

    @property
    def simulated(self) -> bool:
        """True where disk work has no meaning (libvirt's ``test://`` driver)."""
        ...

    def check(self) -> None:
        """Connect and raise StepError(stage='ve_driver/connect') with the engine's message."""
        ...

    def host_info(self) -> HostInfo:
        """What the host offers (emulator, KVM): decides the domain type of ``auto``."""
        ...

    def list_domains(self, prefix: str) -> list[str]:
        """Names of the defined domains (running or not) that start with ``prefix``.

        ``clean`` uses it to find a VC's domains the ledger forgot.
        """
        ...

    def boot(self, node: NodePlan, ctx: StageContext) -> StageResult:
        """Define and start the node's domain; booting a running domain succeeds."""
        ...

    def state(self, name: str) -> str:
        """The domain's state in libvirt's words (``running``, ``shut off``), ``absent``,
        or :data:`UNKNOWN_STATE` from an engine that cannot tell."""
        ...

    def state_reason(self, name: str) -> str:
        """Why the domain is in its state, in words (``the guest shut down``), or ``""``."""
        ...

    def agent_answers(self, name: str) -> bool:
        """Whether the QEMU guest agent inside the running domain answers a ping now."""
        ...

    def shutdown(self, name: str, timeout: float, ctx: StageContext) -> bool:
        """Ask the guest to stop; True when it stopped within ``timeout`` seconds."""
        ...

    def destroy(self, name: str) -> None:
        """Force off and undefine; an absent domain is not an error."""
        ...

    def domain_xml(self, name: str) -> str | None:
        """The live domain XML, or None when absent."""
        ...

    def console_tail(self, name: str, lines: int = 20) -> list[str]:
        """The last lines the guest wrote to its serial console, where known.

        Control characters come escaped (``pragmash.textsafe.printable``): a guest must not
        drive the terminal that shows them.
        """
        ...


@runtime_checkable
class DomainStates(Protocol):
    """An engine that reads many domains' states in one call to its host (libvirt's
    ``getAllDomainStats``): ``status``, ``list`` and ``clean`` ask once per host, not
    once per node (an absent domain costs no failed look-up)."""

    def states(self, names: Sequence[str]) -> dict[str, str]:
        """Each named domain's state as :meth:`EngineDriver.state` words it (``absent``)."""
        ...


@runtime_checkable
class PrivateNetworks(Protocol):
    """An engine that makes each VC's private network (libvirt: its network API).

    Separate from :class:`EngineDriver` because an engine may leave networking to the
    site; then private interfaces go where the plan says and nothing is made.
    """

    def check_private_network(self, plan: PrivateNetworkPlan) -> None:
        """Raise ConfigError naming the site setting when the host cannot carry ``plan``."""
        ...

    def ensure_private_network(self, plan: PrivateNetworkPlan) -> StageResult:
        """Make the network exist and run; idempotent; a failure leaves nothing made."""
        ...

    def private_network_state(self, plan: PrivateNetworkPlan) -> NetworkState:
        """Whether the network (or the site's bridge) exists on the engine."""
        ...

    def remove_private_network(self, vcname: str) -> bool:
        """Remove VC ``vcname``'s network; True when there was one; absent is fine."""
        ...


# -- optional engine capabilities ---------------------------------------------------------
#
# An engine driver need offer only :class:`EngineDriver`. What some engines can do beyond
# it is declared here, one Protocol per capability, so a caller asks
# ``isinstance(engine, Capability)`` and mypy checks the call that follows; nobody probes
# for a method by name or asks which class the engine is.


@runtime_checkable
class HostResources(Protocol):
    """An engine that can say how big its host is (libvirt's node info).

    Placement over several hosts reads the CPUs of a host whose ``[[hosts]]`` entry does
    not give them; ``--mem`` and allocation check memory against it.
    """

    def host_cpus(self) -> int: ...

    def host_memory_mib(self) -> int | None: ...


@runtime_checkable
class Closable(Protocol):
    """An engine holding a connection that should be dropped when a command is done."""

    def close(self) -> None: ...


class ConsoleStream(Protocol):
    """An open serial console: bytes out of the guest, keystrokes into it."""

    def read(self) -> bytes | None:
        """What the guest printed since the last read; b"" for nothing yet, None once closed."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Consoles(Protocol):
    """An engine whose domains have a serial console one can attach to and whose log it knows."""

    def open_console(self, name: str) -> ConsoleStream:
        """An interactive stream on the domain's serial console (``pragmash console``)."""
        ...

    def console_log_path(self, name: str) -> Path | None:
        """The file the domain's serial console writes to, when it has one."""
        ...


@runtime_checkable
class HostStorage(Protocol):
    """An engine that can put files on its host (a ``storage = "pool"`` host)."""

    def host_images(
        self, pool: str, pool_path: str, work_dir: Path, *, lock_dir: Path
    ) -> HostImages:
        """The host's storage pool for node disks; ``work_dir`` for files on their way
        there, ``lock_dir`` (the site's state folder) for locks all its accounts share."""
        ...

    def remove_host_file(self, path: str) -> bool:
        """Delete a file pragmash left in the host's pool folder (a node's console log)."""
        ...


@runtime_checkable
class SiteHosts(Protocol):
    """One engine over a site's several hosts (``[[hosts]]``): which host holds what.

    The command that opens a VC tells it once where the allocation placed each node
    (:meth:`locate`); every domain operation by name then goes to that node's host
    without asking the ledger again.
    """

    #: every host's engine, by host name, in the site config's order
    engines: dict[str, EngineDriver]
    #: the hosts that did not answer (name -> why), once connected
    unreachable: dict[str, str]

    def reachable(self) -> dict[str, EngineDriver]:
        """The engines of the hosts that answered (connecting first if not yet done)."""
        ...

    def engine_of_host(self, host: str) -> EngineDriver:
        """A host's connected engine; StepError naming it when it cannot be reached."""
        ...

    def host_of(self, name: str) -> str:
        """The host node ``name`` is on (as located), else where its domain is found."""
        ...

    def locate(self, vcname: str, hosts: Mapping[str, str]) -> None:
        """Where VC ``vcname``'s nodes are (node name -> host), as its allocation says."""

    def remove_disks(self, name: str) -> list[str]:
        """A node whose domain is gone already (undefined by hand): remove what destroying
        it would have removed on a ``pool`` host; each volume removed, with where."""
        ...


@runtime_checkable
class PowerControl(Protocol):
    """An engine that powers a defined domain off and on without forgetting it.

    ``pragmash stop`` and ``start`` need it: :meth:`EngineDriver.destroy` also undefines,
    and :meth:`EngineDriver.boot` defines the domain again from the vc-in template
    (losing what a site changed with ``virsh edit``). Separate from EngineDriver so an
    engine without it is refused by those two commands by name, not by a missing method.
    """

    def request_shutdown(self, name: str) -> bool:
        """Ask the guest to power off (ACPI) and return at once; False when not running."""
        ...

    def power_off(self, name: str) -> bool:
        """Force the domain off and keep its definition; False when it was not running."""
        ...

    def start(self, name: str) -> bool:
        """Start the defined domain (a running one is left alone); False when none is defined."""
        ...


@runtime_checkable
class GuestAgents(Protocol):
    """An engine that passes commands to the QEMU guest agent inside a running domain.

    One raw call (a JSON command in, the JSON reply out), as libvirt's
    ``qemuAgentCommand`` is: what the commands mean (``guest-exec``, ``guest-file-write``)
    is :mod:`pragmash.engine.guests.agent`'s, so every engine that can pass them gets the
    whole protocol. ``exec`` and ``refresh`` need it; where an engine lacks it they go
    over ssh.
    """

    def agent_command(self, name: str, command: str, timeout: int) -> str:
        """The agent's JSON reply; AgentUnreachable when no agent answers within
        ``timeout`` seconds, StepError when it answers with an error."""
        ...


@dataclass(frozen=True)
class HostVolume:
    """A disk image as a host's storage pool holds it (libvirt's storage API).

    ``path`` is where the host itself sees the file, which is what its domains name;
    the head node may not see it at all. ``uploaded`` says whether this call sent the
    bytes (False: the host had it already).
    """

    pool: str
    name: str
    path: str
    format: str
    uploaded: bool = False


@dataclass(frozen=True)
class HostBase:
    """A base volume in a host's pool, and the volumes backed by it (which use it)."""

    name: str
    bytes: int
    users: tuple[str, ...]


@runtime_checkable
class HostImages(Protocol):
    """A host whose disks the head node does not share: images reach it as volumes.

    The fixed base goes once per host (its content digest in the volume's name);
    each node's disk is a small qcow2 volume backed by it, made on the head node
    (where ``pre_boot`` wrote vc-out.xml into it) and then uploaded. Progress goes
    to ``ctx.progress`` in bytes.
    """

    def put_base(self, local: Path, digest: str, fmt: str, ctx: StageContext) -> HostVolume:
        """The base on the host: uploaded unless a complete copy is there already."""
        ...

    def put_node_disk(
        self, node_name: str, overlay: Path, base: HostVolume, ctx: StageContext
    ) -> HostVolume:
        """The node's overlay as a volume backed by ``base``; replaces an older one."""
        ...

    def find_node_disk(self, node_name: str) -> HostVolume | None:
        """The node's volume where the host has one (a domain defined before)."""
        ...

    def put_node_seed(self, node_name: str, seed: Path, ctx: StageContext) -> HostVolume:
        """The node's NoCloud seed volume on the host; replaces an older one."""
        ...

    def remove_node_disks(self, node_names: Sequence[str]) -> list[str]:
        """Delete the nodes' volumes, seeds too (absent ones are fine); the names deleted."""
        ...

    def bases(self) -> list[HostBase]:
        """The base volumes in the pool, each with the volumes on it (none: no pool)."""
        ...

    def remove_base(self, name: str) -> str | None:
        """Delete base ``name`` if nothing uses it: None when it is gone, else why kept."""
        ...


@runtime_checkable
class DistroDriver(Protocol):
    """What one distro's images need (``vc_driver``)."""

    name: str

    def pre_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult: ...

    def post_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult: ...

    def pre_boot(
        self, node: NodePlan, disk: Path, vc_out: Path, ctx: StageContext
    ) -> StageResult: ...


@runtime_checkable
class FixIdentity(Protocol):
    """A distro driver that says what its pre_fix/post_fix do.

    A fixed image is cached by (image content, method, driver, ``fix_identity()``),
    so the identity must change whenever pre_fix or post_fix would change the image
    differently. ``fix_hooks`` is False when they do nothing at all: then
    ``fix … via none`` needs no fixed copy of the image. A driver without these is
    assumed to have hooks, and is identified by its class.
    """

    fix_hooks: bool

    def fix_identity(self) -> str: ...


@runtime_checkable
class BatchPreBoot(Protocol):
    """A distro driver that can prepare many nodes' disks at once before they boot.

    ``boot`` hands it every node of the step (node, staged disk) in one call, so it
    can write all their files in one libguestfs appliance launch instead of one per
    node. Returns each node's result by node name.
    """

    def pre_boot_many(
        self, nodes: Sequence[tuple[NodePlan, Path]], vc_out: Path, ctx: StageContext
    ) -> dict[str, StageResult]: ...


# Stage names as the seed calls them, mapped to the runtime's own names, so
# ``vc_driver/pre_fix_driver`` and ``vc_driver/pre_fix`` mean the same thing.
VE_COMMANDS: Mapping[str, str] = {
    "allocate": "allocate",
    "fix_driver": "fix",
    "fix": "fix",
    "boot": "boot",
    "shutdown": "shutdown",
    "destroy": "destroy",
    "state": "state",
}
VC_COMMANDS: Mapping[str, str] = {
    "pre_fix_driver": "pre_fix",
    "pre_fix": "pre_fix",
    "post_fix_driver": "post_fix",
    "post_fix": "post_fix",
    "pre_boot": "pre_boot",
}
