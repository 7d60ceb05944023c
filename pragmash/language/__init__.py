"""The recipe language: grammar to AST, static checks, targets and durations."""
