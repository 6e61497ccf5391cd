"""User-facing errors of the executor.

A subclass of ValueError so that the CLI turns it into a one-line `lobra: error: ...` and exit status 2.
"""


class ExecutorError(ValueError):
    """Bad input to the executor: a plan that does not match the ranks or cannot hold the model, a missing
    tasks file or dataset, an incompatible checkpoint."""
