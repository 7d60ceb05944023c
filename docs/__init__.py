"""The documentation, shipped in the package so the REPL's `help` reads the same text."""
