"""User-facing errors of the cost model.

A subclass of ValueError so that the CLI turns it into a one-line message and exit status 2.
"""


class CostModelError(ValueError):
    """Bad input to the cost model: an unknown model or GPU, a malformed profile or plan, an impossible config."""
