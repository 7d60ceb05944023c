boot frontend
boot compute
boot compute[0]
boot compute[-1]
boot compute[1:3]
boot compute[2:]
boot compute[:2]
boot compute[:]
boot all
boot calit2-compute-0
boot frontend compute[0] hosted-vm-0-1-0
boot frontend,compute[0] , compute[2:4],all
