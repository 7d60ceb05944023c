"""The stages a step's work is filed under: ``ve_driver/boot``, ``vc_driver/pre_boot`` …

A failed step is recorded with the stage it failed in (the journal's ``stage``,
``status``, ``history``, the REPL's ``why``), a driver's error names it, and notes
begin with it. Each stage is written once, here, as a constant whose type is its
exact text (``Final``: mypy reads it as that literal), so no module spells one
out and a misspelt stage cannot file an error where nobody looks for it.

The names follow PRAGMA's driver commands: ``ve_driver/…`` is the virtualization
engine's side (libvirt, a site's own VE scripts), ``vc_driver/…`` the distro
driver's (what goes into a node's disk).
"""

from __future__ import annotations

from typing import Final

# -- the engine's stages (ve_driver) -----------------------------------------------------

ALLOCATE: Final = "ve_driver/allocate"  # leases: public address, VLAN, computes
CONNECT: Final = "ve_driver/connect"  # reaching a host's libvirt (or a VE folder's scripts)
STAGE: Final = "ve_driver/stage"  # a node's own disk: an overlay or a copy of the image
FIX: Final = "ve_driver/fix"  # converting or customizing a repository image
FIX_IMAGES: Final = "ve_driver/fix_images"  # a 2015 driver folder's own fix script
BOOT: Final = "ve_driver/boot"  # define and start a node's domain
STATE: Final = "ve_driver/state"
SHUTDOWN: Final = "ve_driver/shutdown"
POWER_OFF: Final = "ve_driver/power_off"
START: Final = "ve_driver/start"  # start a defined domain again (pragmash start)
DESTROY: Final = "ve_driver/destroy"
WAIT: Final = "ve_driver/wait"  # waiting for nodes to reach a state, be up, show text
NETWORK: Final = "ve_driver/network"  # the VC's own private network
STORAGE: Final = "ve_driver/storage"  # disks on a host that does not share ours (pool)
CONSOLE: Final = "ve_driver/console"

# -- the distro driver's stages (vc_driver) ----------------------------------------------

PRE_FIX: Final = "vc_driver/pre_fix"
POST_FIX: Final = "vc_driver/post_fix"
PRE_BOOT: Final = "vc_driver/pre_boot"  # the node's files (vc-out.xml, keys) into its disk

# -- pragmash's own ----------------------------------------------------------------------

RUN: Final = "run"  # a recipe's host command
EXEC: Final = "exec"  # a recipe's command inside its nodes (guest agent, else ssh)
GUEST_AGENT: Final = "guest-agent"  # a node's QEMU guest agent refused or did not answer
REFRESH: Final = "refresh"  # running nodes receiving their current vc-out
GUESTFISH: Final = "guestfish"  # a guestfish script pragmash builds
