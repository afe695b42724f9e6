"""Reference solutions: the single source of the exercise stubs. Never shipped to students."""
