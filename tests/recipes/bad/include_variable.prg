include "$dir/common.prg"
