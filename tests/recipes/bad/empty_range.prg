boot compute[2:1]
