"""The embedded demo site and repository, shipped as ``pragmash.demo``."""
