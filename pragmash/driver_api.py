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
from typing import Literal, Protocol, runtime_checkable

Role = Literal["frontend", "compute"]


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

    def boot(self, node: NodePlan, ctx: StageContext) -> StageResult:
        """Define and start the node's domain; booting a running domain succeeds."""
        ...

    def state(self, name: str) -> str:
        """The domain's state in libvirt's words (``running``, ``shut off``) or ``absent``."""
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

        Control characters come escaped (``pragmash.images.textsafe.printable``): a guest must not
        drive the terminal that shows them.
        """
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
