# every statement, one per line
allocate
allocate 8
allocate $num_compute
fix frontend via virt-customize
fix compute[0] via $method
boot all
wait 90s
wait 1.5m
wait ${pause}
wait "1h"
wait frontend up
wait compute running timeout 5m
wait calit2-compute-0, compute[1] shut_off timeout $t
set greeting = hello
set empty = ""
param num_compute = 2
echo
echo booting $vcname
include "lib/common.prg"
ve_driver/boot frontend $vc_out
vc_driver/pre_boot compute[0]
run qemu-img info "$temp_dir/frontend.img"
