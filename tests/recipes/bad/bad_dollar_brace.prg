echo pre${name
