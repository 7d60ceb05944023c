allocate 4; fix all via virt-v2v; boot frontend; wait 300; boot compute
