"""Subcommands of the ``pfes`` CLI, one module each (see ``pfes.cli``)."""
