# cloud.prg: boot a virtual cluster of cloud images that configure themselves (cloud-init).
#
# Images:  current cloud images with cloud-init (Debian genericcloud, Ubuntu, Rocky,
#          Alma, Fedora; raw or qcow2) already made for KVM, so no conversion by
#          default; vc-in names <driver>cloud_init</driver>. Before boot each node gets
#          its own NoCloud seed (a read-only volume labelled cidata): its static
#          addresses matched by MAC, hostname, root's --key, /etc/hosts for the VC and
#          its own /root/vc-out.xml. No libguestfs appliance starts and the image is not
#          written to: cloud-init does the rest at first boot.
# Site:    a libvirt engine; a free public address, a VLAN and CPUs for $num_compute
#          compute CPUs; nothing else on the head node (pragmash writes the seeds). No
#          DHCP or metadata service is needed. `set cloud_config = FILE` (a
#          #cloud-config mapping) before a boot adds its keys to every node's user-data.

param num_compute = 2
param fix_method = none
param frontend_timeout = 10m
param compute_delay = 0
param compute_timeout = 10m

allocate $num_compute
include "common/network-check.prg"
fix all via $fix_method
include "common/boot-frontend.prg"
include "common/boot-computes.prg"
echo "$vcname is up: every node configured itself from its NoCloud seed"
