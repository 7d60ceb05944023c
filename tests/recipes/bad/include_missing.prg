include "missing.prg"
