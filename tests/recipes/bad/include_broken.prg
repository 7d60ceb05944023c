include "lib/broken.prg"
