"""The ``mmrphys`` command line: one module per verb in this package."""
