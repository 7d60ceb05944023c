# centos7.prg: boot a CentOS 7 virtual cluster (frontend + computes).
#
# Images:  the vc-in.xml's frontend and compute disks (raw, qcow2 or .img.gz) with /
#          on the first partition; vc-in names <driver>centos7</driver>. The centos7
#          driver writes ifcfg-eth0/eth1 (bound by MAC), /etc/sysconfig/network,
#          /etc/hostname, /etc/resolv.conf and /root/vc-out.xml before boot.
#          Images made for another hypervisor need virtio in their initramfs: the
#          default fix (virt-v2v) does that.
# Site:    a libvirt engine; a free public address, a VLAN and CPUs for $num_compute
#          compute CPUs; virt-v2v (with nbdkit, libnbd-bin) on the host that runs the
#          fix, or --set fix_method=none for images already fixed.
#          Nothing site-specific lives here: addresses, VLANs, MACs, bridges and
#          folders all come from the site config.

param num_compute = 2
param fix_method = virt-v2v
param frontend_timeout = 10m
param compute_delay = 0
param compute_timeout = 10m

allocate $num_compute
include "common/network-check.prg"
fix all via $fix_method
include "common/boot-frontend.prg"
include "common/boot-computes.prg"
echo "$vcname is up: CentOS 7 nodes read their addresses from $vc_out"
