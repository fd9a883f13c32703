"""Telecom, the fifth universe, is a separate package (examples/telecom): pip installs it next to
Univers, and it passes the conformance suite and its own scenarios (order, usage, renewal, stop
in FR; nowhere else), with nothing of it in core/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from core import i18n_tools
from core.context import TranslationDomain
from tests.test_scaffold import pip_install, run_pytest

PACKAGE = Path(__file__).parents[1] / "examples" / "telecom"


def test_telecom_installs_and_passes_the_conformance_suite_and_its_scenarios(tmp_path):
    source = shutil.copytree(PACKAGE, tmp_path / "telecom", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    locales = source / "univers_telecom" / "locales"
    assert i18n_tools.compile_catalogs(TranslationDomain("telecom", locales, source / "univers_telecom"), ["fr"])  # .mo: built, not kept
    pip_install(source, tmp_path / "site")
    done = run_pytest(source, tmp_path / "site", "tests")
    assert done.returncode == 0, done.stdout[-4000:]
    assert "failed" not in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
    passed = int(re.search(r"(\d+) passed", done.stdout).group(1))
    assert passed >= 2 * (6 + 7), done.stdout[-2000:]  # the 6 conformance checks and 7 scenarios, on both engines


def test_core_names_no_telecom_product():
    core = Path(__file__).parents[1] / "core"
    assert not [p for p in core.rglob("*.py") if "telecom-" in p.read_text(encoding="utf-8")]
