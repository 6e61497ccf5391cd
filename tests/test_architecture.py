"""Guards of the architecture: dependencies point one way, and the light packages stay light."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each layer may import only from the layers before it (and itself). lobra.io is a helper of every layer.
LAYERS = (
    ("lobra", "lobra.io", "lobra.costmodel", "lobra.traces"),
    ("lobra.policies",),
    ("lobra.sim", "lobra.executor"),
    ("lobra.calibration",),
    ("lobra.analysis",),
    ("lobra.cli", "lobra.commands"),
)
# Packages of one layer that must not know each other: the simulator and the executor meet only in calibration.
STRANGERS = ({"lobra.sim", "lobra.executor"},)
FOLDERS = {"costmodel", "traces", "policies", "sim", "executor", "calibration", "analysis"}


def package_of(module: str) -> str:
    """The layer package a dotted module name belongs to (lobra.sim.records -> lobra.sim)."""
    parts = module.split(".")
    name = ".".join(parts[:2]) if len(parts) > 1 else parts[0]
    return name if any(name in layer for layer in LAYERS) else "lobra"


def layer_of(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] != "lobra":
        parts.insert(0, "lobra")
    return ".".join(p for p in parts if p != "__init__")


def product_files() -> list[Path]:
    files = [p for folder in sorted(FOLDERS) for p in (ROOT / folder).rglob("*.py")]
    return files + sorted((ROOT / "lobra").rglob("*.py"))


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, also those inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def file_violations(path: Path, mine: str) -> list[str]:
    """What a file of package `mine` imports against the layering."""
    bad = []
    for line, module in imports_of(path):
        where = (
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{line} imports {module}"
        )
        if module.split(".")[0] in FOLDERS:
            bad.append(f"{where}: a bare folder name; the product is the lobra namespace")
            continue
        if not module.startswith("lobra"):
            continue
        theirs = package_of(module)
        if layer_of(theirs) > layer_of(mine):
            bad.append(f"{where}: {mine} (layer {layer_of(mine)}) may not import layer {layer_of(theirs)}")
        elif theirs != mine and {mine, theirs} in STRANGERS:
            bad.append(f"{where}: {mine} and {theirs} must stay independent")
    return bad


def test_imports_point_one_way():
    files = product_files()
    assert len(files) > 50, "the product's files were not found"
    bad = [v for path in files for v in file_violations(path, package_of(module_name(path)))]
    assert bad == []


def test_the_guard_catches_wrong_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import costmodel\nfrom lobra.sim.simulator import Simulator\n"
        "def late():\n    from lobra.executor import job\n"
    )
    assert file_violations(probe, "lobra.costmodel") == [
        "probe.py:1 imports costmodel: a bare folder name; the product is the lobra namespace",
        "probe.py:2 imports lobra.sim.simulator: lobra.costmodel (layer 0) may not import layer 2",
        "probe.py:4 imports lobra.executor: lobra.costmodel (layer 0) may not import layer 2",
    ]
    assert file_violations(probe, "lobra.sim")[1:] == [
        "probe.py:4 imports lobra.executor: lobra.sim and lobra.executor must stay independent"
    ]
    assert file_violations(probe, "lobra.commands")[1:] == []


@pytest.mark.parametrize("package", ["costmodel", "traces", "policies"])
def test_light_packages_import_neither_torch_nor_simpy(package, tmp_path):
    code = (
        f"import sys, lobra.{package}; heavy = [m for m in ('torch', 'simpy', 'transformers', 'datasets') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    # From another folder, so that only the installed namespace is importable, not the repo's folders.
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.strip()
    assert out == "", f"import lobra.{package} loaded {out}"


def test_installed_cli_runs_outside_the_repo(tmp_path):
    """Shipped data is found through the namespace, not the working directory."""
    out = subprocess.run(
        [sys.executable, "-m", "lobra.cli", "simulate", "--scenario", "tiny-cpu", "--steps", "1", "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"steps": 1' in out.stdout


def test_lobra_help_lists_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "lobra.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("demo", "costmodel", "calibrate"):
        assert command in out
