"""A module that fails while being imported (for the command-line tests)."""

raise RuntimeError("this module is broken on purpose")
