allocate 2
ve_driver/bot frontend
