allocate 4
boot compute[1
