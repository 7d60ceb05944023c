allocate 4
bot frontend
