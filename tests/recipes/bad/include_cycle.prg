include "cycle/a.prg"
