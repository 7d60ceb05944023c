echo in a
include "b.prg"
