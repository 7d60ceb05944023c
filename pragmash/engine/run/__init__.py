"""A run itself: the stepping interpreter, its runtime state, plans, drivers found by name, and opening a VC for work."""
