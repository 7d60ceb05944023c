allocate 4
fix all