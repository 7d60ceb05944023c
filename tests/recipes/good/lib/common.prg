# included by statements.prg and include_nested.prg
echo common part
include "leaf.prg"
