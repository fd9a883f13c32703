"""The layout of core/: imports flow one way (the contracts in pyproject.toml, checked by
import-linter), and no module grows past a size a reader can hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
MAX_LINES = 500


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(tree / "pyproject.toml")], cwd=tree,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=300)


def copy_of_core(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "core", tmp_path / "core", ignore=shutil.ignore_patterns("__pycache__", "data", "*.mo"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_imports_flow_one_way():
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


@pytest.mark.parametrize("module, back_import, broken", [
    # the kernel reaching up into a domain package
    ("core/clock.py", "from core.billing import invoicing", "The edges above the plugin host"),
    # a domain package importing one above it: payments -> ordering -> payments
    ("core/payments/settlement.py", "from core.ordering import orders", "No import cycle"),
    # a domain package importing an edge
    ("core/lifecycle/services.py", "from core.api import common", "The edges above the plugin host"),
])
def test_a_back_import_breaks_the_contracts(tmp_path, module, back_import, broken):
    tree = copy_of_core(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n\ndef _back():\n    {back_import}  # noqa\n")
    done = lint(tree)
    assert done.returncode != 0
    assert broken in done.stdout.split("Broken contracts")[1], done.stdout


def test_no_module_of_core_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "core").rglob("*.py")
            if "migrations" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long
