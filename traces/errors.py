"""User-facing errors of the traces package.

A subclass of ValueError so that the CLI turns it into a one-line `lobra: error: ...` and exit status 2.
"""


class TraceError(ValueError):
    """Bad input: a malformed trace or task file, an unknown trace or scenario, unreachable moments."""
