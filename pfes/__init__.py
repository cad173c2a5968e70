"""pfes: real-time, causal facial expression spotting.

This package holds only what every stage shares: the exception tree and the command line.
It must stay importable with nothing but the standard library, because ``engine`` imports
``pfes.errors`` and ``engine`` must run on machines that have only torch and numpy.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
