"""Bundled recipes, shipped as ``pragmash.recipes``."""
