# wait for text on the serial console: a literal, quoted or bare, with an optional timeout
wait frontend console "login:"
wait compute[0] compute[1], my-node console "Reached target (multi-user)" timeout 10m
wait all console $prompt timeout $t
