# ubuntu.prg: boot a virtual cluster of Ubuntu cloud images (cloud-init style).
#
# Images:  Ubuntu cloud images (raw or qcow2, / on the first partition) already made
#          for KVM, so no conversion by default; vc-in names <driver>ubuntu_cloud</driver>.
#          Before boot each node gets a NoCloud seed that cloud-init reads (as
#          recipes/cloud.prg). For Ubuntu images without cloud-init the site says
#          [delivery] driver.ubuntu_cloud = "disk": the driver then writes, in one
#          libguestfs session, /etc/netplan/50-pragmash.yaml (static addresses matched
#          by MAC, where Ubuntu reads its network), a cloud-init override so no
#          datasource is awaited, /etc/hostname, and /root/vc-out.xml.
# Site:    a libvirt engine; a free public address, a VLAN and CPUs for $num_compute
#          compute CPUs; libguestfs (guestfish) on the host. No DHCP or metadata
#          service is needed. --set fix_method=virt-customize to refresh images.

param num_compute = 2
param fix_method = none
param frontend_timeout = 5m
param compute_delay = 0
param compute_timeout = 5m

allocate $num_compute
include "common/network-check.prg"
fix all via $fix_method
include "common/boot-frontend.prg"
include "common/boot-computes.prg"
echo "$vcname is up: each node configured from its seed (or netplan written into it)"
