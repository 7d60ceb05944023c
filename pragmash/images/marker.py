"""The ``PRAGMASH-UP`` marker: a boot-time unit that says on the serial console "booted".

For images that have no guest agent, print no login prompt on the serial console and
open no port the site can reach, a distro driver's ``pre_boot`` installs this unit
(when the VC's ``up`` tests include ``marker``). It is plain files, so it goes in with
the same libguestfs session as vc-out.xml:

* systemd (CentOS 7, Ubuntu, Debian): a oneshot service enabled by its link in
  ``multi-user.target.wants`` (what ``systemctl enable`` would make);
* upstart (Rocks 6 / CentOS 6): a task run when the boot's runlevel scripts are done.

Each prints ``PRAGMASH-UP`` on ``/dev/ttyS0``, the serial console pragmash reads.
An init system that is absent ignores the other's file.
"""

from __future__ import annotations

from pragmash.driver_api import UP_MARKER, UpTest
from pragmash.images.inject import GuestContent, GuestLink

SYSTEMD_UNIT = "/etc/systemd/system/pragmash-up.service"
SYSTEMD_WANTS = "/etc/systemd/system/multi-user.target.wants/pragmash-up.service"
UPSTART_JOB = "/etc/init/pragmash-up.conf"

_SAY = f"echo {UP_MARKER} > /dev/ttyS0"

SYSTEMD_TEXT = f"""\
# Written by pragmash: tells the host on the serial console that this node has booted.
[Unit]
Description=Say {UP_MARKER} on the serial console (pragmash waits for it)
After=basic.target network.target
ConditionPathExists=/dev/ttyS0

[Service]
Type=oneshot
ExecStart=/bin/sh -c '{_SAY}'

[Install]
WantedBy=multi-user.target
"""

UPSTART_TEXT = f"""\
# Written by pragmash: tells the host on the serial console that this node has booted.
description "say {UP_MARKER} on the serial console (pragmash waits for it)"
start on stopped rc RUNLEVEL=[2345]
task
exec /bin/sh -c '{_SAY}'
"""


def marker_files() -> dict[str, GuestContent]:
    """The unit files and the enabling link, by guest path."""
    return {
        SYSTEMD_UNIT: SYSTEMD_TEXT.encode(),
        UPSTART_JOB: UPSTART_TEXT.encode(),
        SYSTEMD_WANTS: GuestLink(SYSTEMD_UNIT),
    }


def marker_files_for(up_tests: tuple[UpTest, ...]) -> dict[str, GuestContent]:
    """The marker's files where the node is held to the marker, else none."""
    return marker_files() if any(t.kind == "marker" for t in up_tests) else {}
