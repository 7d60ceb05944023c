"""Disk images: staging, fixing, injecting files, external tools and domain XML."""
