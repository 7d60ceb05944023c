"""The interactive debugger over the interpreter's public step API."""
