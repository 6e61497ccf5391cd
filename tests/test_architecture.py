"""Guards of the architecture: dependencies point one way, and the light packages stay light."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["costmodel", "traces", "policies"])
def test_light_packages_import_neither_torch_nor_simpy(package):
    code = (
        f"import sys, lobra.{package}; heavy = [m for m in ('torch', 'simpy', 'transformers', 'datasets') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"import lobra.{package} loaded {out}"


def test_lobra_help_lists_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "lobra.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("demo", "costmodel", "calibrate"):
        assert command in out
