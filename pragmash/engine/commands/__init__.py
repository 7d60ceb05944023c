"""What can be done to a VC outside a run: list, status, clean, stop, start, scale, refresh, access, cache."""
