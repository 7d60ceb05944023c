wait frontend console timeout 5m
