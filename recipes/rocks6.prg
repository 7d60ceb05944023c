# rocks6.prg: boot a Rocks 6 virtual cluster, pragma_boot's pipeline as a recipe.
#
# Images:  the vc-in.xml's frontend and compute disks (raw, qcow2 or .img.gz), with /
#          on the first partition and Rocks' vc-out reader, which configures each node
#          from /root/vc-out.xml at boot (the rocks6_client driver puts it there).
# Site:    a libvirt engine; a free public address, a VLAN and CPUs for $num_compute
#          compute CPUs; virt-v2v where the fix runs (or --set fix_method=none).

param num_compute = 2
param fix_method = virt-v2v
param frontend_timeout = 10m
param compute_timeout = 10m

allocate $num_compute
fix all via $fix_method
boot frontend
wait frontend up timeout $frontend_timeout
boot compute
wait compute up timeout $compute_timeout
echo "$vcname is up: vc-out.xml at $vc_out"

# After `pragmash scale`: every running node already holds its new /root/vc-out.xml;
# the frontend regenerates its configuration (hosts, DHCP, queues) from it. Needs
# [policy] allow_run (or --allow-run); without it a scale skips these and says so.
on grow exec frontend "/opt/rocks/bin/rocks sync config" timeout 10m
on shrink exec frontend "/opt/rocks/bin/rocks sync config" timeout 10m
