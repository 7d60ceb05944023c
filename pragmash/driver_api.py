"""What the runtime asks of drivers, as small Protocols.

Two kinds of driver: the *engine* (``ve_driver``: the site's virtualization engine,
libvirt at any URI) and the *distro* driver (``vc_driver``: what one distro's images
need before fix, after fix and before boot). Both are plain objects; the runtime
hands them a :class:`NodePlan` (everything decided about one node) and a
:class:`StageContext` (where to report progress). A driver never prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

Role = Literal["frontend", "compute"]
UpKind = Literal["agent", "console", "port", "marker"]
GraphicsListen = Literal["loopback", "template"]

#: What the bundled distros print when they have booted: a getty's login prompt on the
#: serial console (``debian12 login: ``, ``compute-0-0 login:``). Searched in each line.
#: The prompt ends its line, or the kernel's or a unit's log lines follow it on the same
#: line (``debian12 login: [   81.87] firstboot.sh[282]: …``): a guest's first-boot
#: scripts often write to the console just after getty has printed the prompt.
LOGIN_PROMPT = r"\blogin: *(?:$|\[ *\d+\.\d+\]|[\w@.-]+\[\d+\]:)"
#: The line a boot-time unit installed by ``pre_boot`` prints (see pragmash.images.marker).
UP_MARKER = "PRAGMASH-UP"


@dataclass(frozen=True)
class UpTest:
    """One way a guest shows it has booted (``wait … up``).

    ``agent``: the QEMU guest agent answers a ping through libvirt (the domain gets
    the agent's virtio channel). ``console``: a line of the serial console matches
    ``pattern`` (a Python regular expression; the login prompt by default).
    ``port``: a TCP connection to ``port`` on the node's address succeeds (the public
    address for a frontend, the private one for a compute). ``marker``: the console
    shows the ``PRAGMASH-UP`` line, which the distro driver's ``pre_boot`` installs a
    boot-time unit to print. A node is up when it is running and any of its tests pass.
    """

    kind: UpKind
    pattern: str = ""
    port: int = 0

    @property
    def spec(self) -> str:
        """The test as a site config spells it (``console:REGEX``, ``port:22``)."""
        if self.kind == "console":
            return "console" if self.pattern == LOGIN_PROMPT else f"console:{self.pattern}"
        if self.kind == "port":
            return f"port:{self.port}"
        return self.kind

    def describe(self) -> str:
        """The test in a user's words, for `pragmash check`, the REPL and step messages."""
        if self.kind == "agent":
            return "the QEMU guest agent answers"
        if self.kind == "console":
            if self.pattern == LOGIN_PROMPT:
                return "a login prompt on the serial console"
            return f"a console line matching /{self.pattern}/"
        if self.kind == "port":
            return f"TCP port {self.port} answers"
        return f"the {UP_MARKER} line on the serial console"


UP_KINDS: tuple[UpKind, ...] = ("agent", "console", "port", "marker")

#: What a distro driver that declares nothing is held to: the tests that work on
#: images that know nothing of pragmash, then the marker for images that print it.
DEFAULT_UP_TESTS: tuple[UpTest, ...] = (
    UpTest("agent"),
    UpTest("console", LOGIN_PROMPT),
    UpTest("marker"),
)


def parse_up_test(text: str) -> UpTest:
    """``agent``, ``console``, ``console:REGEX``, ``port:N`` or ``marker``; ValueError if not."""
    kind, sep, arg = text.partition(":")
    if kind == "console":
        pattern = arg if sep else LOGIN_PROMPT
        if not pattern:
            raise ValueError("'console:' needs a regular expression after the colon")
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f"{pattern!r} is not a regular expression: {err}") from None
        return UpTest("console", pattern)
    if kind == "port":
        if not arg.isdigit() or not 1 <= int(arg) <= 65535:
            raise ValueError(f"expected 'port:N' with N from 1 to 65535, got {text!r}")
        return UpTest("port", port=int(arg))
    if kind in ("agent", "marker") and not sep:
        return UpTest(kind)  # type: ignore[arg-type]  # narrowed by the test above
    raise ValueError(
        f"unknown up test {text!r}; expected agent, console, console:REGEX, port:N or marker"
    )


def up_tests_of(driver: object) -> tuple[UpTest, ...]:
    """The distro driver's declared ``up_tests``, or the defaults for one that declares none.

    Optional on purpose: a site's own driver (a seed script folder, an entry point
    written before ``up`` was declarable) keeps working with the defaults.
    """
    declared = getattr(driver, "up_tests", None)
    if declared is None:
        return DEFAULT_UP_TESTS
    return tuple(declared)


def describe_up_tests(tests: Iterable[UpTest]) -> str:
    """``a login prompt on the serial console, or TCP port 22 answers``."""
    return ", or ".join(t.describe() for t in tests)


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
    # the site's [engine] graphics_listen: "loopback" puts TCP displays on 127.0.0.1,
    # "template" keeps the template's listeners as written
    graphics_listen: GraphicsListen = "loopback"

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

    outcome: Literal["done", "skipped"] = "done"
    message: str = ""
    products: dict[str, str] = field(default_factory=dict)
    output_tail: list[str] = field(default_factory=list)


@dataclass
class StageContext:
    """Passed to every stage: report progress and notes without printing.

    ``note(text)`` adds a line of output; ``progress(done, total, label)`` reports
    long work (bytes staged, seconds waited). ``temp_dir`` is the VC's own folder.
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
        """The domain's state in libvirt's words (``running``, ``shut off``) or ``absent``."""
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

    def remove_node_disks(self, node_names: Sequence[str]) -> list[str]:
        """Delete the nodes' volumes (absent ones are fine); the names of those deleted."""
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
