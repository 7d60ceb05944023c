"""Running a recipe: interpreter, runtime, session-level operations, plans, driver registry."""
