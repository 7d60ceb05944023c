"""Bundled engine and distro drivers, shipped as ``pragmash.drivers``."""
