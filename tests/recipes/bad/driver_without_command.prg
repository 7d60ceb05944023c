ve_driver/ boot
