allocate 2 4
