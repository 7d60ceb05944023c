"""Whether a run does disk work: decided once per run, worded in one place.

libvirt's ``test:///`` engine defines and starts domains that run no guest: there
is no disk to stage, fix or inject into, no console to read, no guest to answer.
The engine says whether it is such an engine (``EngineDriver.simulated``); a run
asks it once, when it is opened (:func:`pragmash.engine.run.opening.load`), and every
step reads the answer from :attr:`Runtime.disk_work
<pragmash.engine.run.runtime.Runtime.disk_work>`. The notes that say what was skipped
for it are all worded here, so a user reads one story.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pragmash import stages
from pragmash.driver_api import EngineDriver, NodePlan
from pragmash.vc.config.site import SiteConfig

#: What ``--dry-run`` adds to a step that a simulated engine skips.
PLAN_SKIPPED = " (skipped: simulated engine)"
#: How a waited-for node counts as up where no guest runs.
NO_GUEST = "running (the engine is simulated: no guest to ask)"


@dataclass(frozen=True)
class DiskWork:
    """The run's one answer: does it do disk work (``real``) or is the engine simulated.

    ``uri`` is the site's engine; ``hosts`` each host's URI by name, so a note about
    some nodes names their own hosts, not the site's first.
    """

    simulated: bool
    uri: str
    hosts: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, engine: EngineDriver, site: SiteConfig) -> DiskWork:
        """Ask the engine, once."""
        return cls(bool(engine.simulated), site.uri, {h.name: h.uri for h in site.hosts})

    def where(self, nodes: Sequence[NodePlan] = ()) -> str:
        """The URIs of the hosts ``nodes`` are placed on (``a, b``); the site's by default."""
        used = {n.host for n in nodes}
        return ", ".join(uri for name, uri in self.hosts.items() if name in used) or self.uri

    @property
    def real(self) -> bool:
        return not self.simulated

    def skipped(self, what: str, nodes: Sequence[NodePlan] = ()) -> str:
        """A step's message when it had disk work to do (``what``, for ``nodes``) and
        skipped it."""
        return (
            f"skipped: the engine is simulated ({self.where(nodes)}), so there is no disk to {what}"
        )

    def boot_note(self, nodes: Sequence[NodePlan]) -> str:
        """What a ``boot`` step's message adds on a simulated engine."""
        return (
            f" (staging and {stages.PRE_BOOT} skipped: the engine is simulated,"
            f" {self.where(nodes)})"
        )

    def no_guest(self, what: str, nodes: Sequence[NodePlan] = ()) -> str:
        """A step's message when it had to act inside guests (``exec``, ``refresh``)."""
        return f"skipped: the engine is simulated ({self.where(nodes)}): no guest {what}"

    def clock_skipped(self, seconds: float) -> str:
        """A clock ``wait``'s message on a simulated engine."""
        return f"skipped: the engine is simulated ({self.uri}), nothing boots in {seconds:g} s"

    @staticmethod
    def taken_as_running(goal: str) -> str:
        """What a wait's message adds when ``goal`` was taken as ``running``."""
        return f" (simulated engine: '{goal}' taken as 'running')"

    def no_console(self, name: str) -> str:
        return (
            f"{name}: there is no console to attach to: the engine is simulated ({self.uri}), its"
            " domains run no guest and have no serial port"
        )
