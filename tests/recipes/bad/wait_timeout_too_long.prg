boot frontend
wait frontend up timeout 1000h
