boot frontend
wait
