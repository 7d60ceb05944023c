allocate 2
vc_driver/pre_boot
