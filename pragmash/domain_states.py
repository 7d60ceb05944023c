"""A node's domain state, as an engine reports it (``EngineDriver.state``).

virsh's words for libvirt's states, so users read in ``status`` and the REPL what
``virsh list`` shows, and two of pragmash's own: ``absent`` (no domain of that name is
defined) and ``unknown`` (an engine that cannot tell, such as a site's VE scripts).
``stop`` and ``start`` also keep the states they left their nodes in, in the journal's
step products, for ``status``. Each word is written once, here, as a constant whose
type is its exact text (``Final``), so no module spells one out.

A run's or a step's outcome (``running``, ``done``, ``failed``) is another meaning,
written in :mod:`pragmash.outcomes`.
"""

from __future__ import annotations

from typing import Final

# -- libvirt's states, in virsh's words ---------------------------------------------------

NO_STATE: Final = "no state"
RUNNING: Final = "running"
IDLE: Final = "idle"  # libvirt's "blocked"
PAUSED: Final = "paused"
IN_SHUTDOWN: Final = "in shutdown"
SHUT_OFF: Final = "shut off"
CRASHED: Final = "crashed"
PMSUSPENDED: Final = "pmsuspended"

# -- pragmash's own ------------------------------------------------------------------------

ABSENT: Final = "absent"  # no domain of that name is defined
UNKNOWN: Final = "unknown"  # an engine that cannot tell says why in its state_reason
