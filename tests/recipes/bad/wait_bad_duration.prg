wait 5x
