allocate 4
fix all virt-v2v
