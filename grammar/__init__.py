"""The recipe grammar, shipped as ``pragmash.grammar``."""
