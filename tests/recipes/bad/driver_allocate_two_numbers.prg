ve_driver/allocate 2 3
