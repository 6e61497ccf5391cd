import shlex

import pytest

from lobra.cli import main


@pytest.fixture()
def cli(capsys):
    """Run `lobra ARGS` in-process: cli("plan --scenario paper-7b") -> (exit status, stdout, stderr)."""

    def run(args: str | list[str]):
        argv = shlex.split(args) if isinstance(args, str) else list(args)
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse's own errors
            rc = exc.code
        out, err = capsys.readouterr()
        return rc, out, err

    return run
