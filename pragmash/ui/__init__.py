"""Front ends: the only code that prints. render is shared by cli and repl."""
