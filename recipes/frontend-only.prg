# frontend-only.prg: boot just a VC's frontend (no computes), e.g. the demo's `tiny`.
#
# Images:  the vc-in.xml's frontend disk (raw, qcow2 or .img.gz), / on the first
#          partition; any distro driver the vc-in names (rocks6_client, centos7,
#          ubuntu_cloud or a site driver folder). A <compute> section, if any, is
#          left alone: no compute CPUs are allocated.
# Site:    a libvirt engine; one free public address and a VLAN; virt-v2v if
#          fix_method stays virt-v2v (--set fix_method=none for ready images).
#
#     pragmash recipes/frontend-only.prg --vcname tiny

param fix_method = virt-v2v
param frontend_timeout = 10m

# No compute CPUs: only the frontend is leased (a variable, since the parser reads a
# literal count as "at least one CPU").
set compute_cpus = 0
allocate $compute_cpus
include "common/network-check.prg"
fix frontend via $fix_method
include "common/boot-frontend.prg"
echo "$vcname frontend is up: vc-out.xml at $vc_out"
