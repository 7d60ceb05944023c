echo in b
include "a.prg"
