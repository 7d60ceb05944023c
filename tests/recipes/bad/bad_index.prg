boot compute[x]
