"""Upper bounds on sizes a site config or vc-in.xml may ask for.

They are far above any real machine and exist only so an absurd value (a typo,
an extra zero, a number pasted in the wrong place) is refused where it is written,
with the file and the key or element, instead of failing deep in a run after
leases were taken (Python's "cannot fit 'int' into an index-sized integer", a
libvirt error at boot).
"""

from __future__ import annotations

MAX_SITE_CPUS = 1 << 20  # [resources] cpus: a million CPUs
MAX_NODE_CPUS = 4096  # vCPUs of one domain (QEMU's and KVM's own ceiling)
MAX_BOOT_PARALLELISM = 1024  # [engine] boot_parallelism: boots at once
MAX_MEMORY_KIB = 64 * 1024**3  # <memory> of one domain: 64 TiB
