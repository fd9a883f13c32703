"""`univers plugin new`: the generated universe installs with pip and passes the conformance suite as generated."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core import scaffold
from core.errors import Conflict, InvalidInput


def pip_install(package, target) -> None:
    """Install a plugin package into its own folder (no network, nothing changed in this environment)."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(package)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def run_pytest(cwd, site, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_the_generated_universe_passes_the_conformance_suite_as_generated(tmp_path):
    package = scaffold.create("rocket", tmp_path / "univers-rocket")
    assert (package / "pyproject.toml").read_text().count('rocket = "univers_rocket.plugin:universe"') == 1
    pip_install(package, tmp_path / "site")
    done = run_pytest(package, tmp_path / "site", "tests")
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout and "skipped" not in done.stdout, done.stdout[-1500:]


def test_a_broken_generated_universe_fails_the_suite(tmp_path):
    package = scaffold.create("rocket", tmp_path / "univers-rocket")
    po = package / "univers_rocket" / "locales" / "fr" / "LC_MESSAGES" / "rocket.po"
    po.write_text(po.read_text().replace('msgstr "Rocket Essentiel"', 'msgstr ""'))  # a name left untranslated
    pip_install(package, tmp_path / "site")
    done = run_pytest(package, tmp_path / "site", "tests", "-k", "translations and sqlite")
    assert done.returncode == 1 and "Rocket Basic" in done.stdout, done.stdout[-3000:]


@pytest.mark.parametrize("name", ["Rocket", "1rocket", "r", "rocket-ship", "x" * 40])
def test_a_bad_name_is_refused(tmp_path, name):
    with pytest.raises(InvalidInput):
        scaffold.create(name, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_a_folder_in_use_is_refused(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "mine.txt").write_text("keep me")
    with pytest.raises(Conflict):
        scaffold.create("rocket", tmp_path / "p")
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["mine.txt"]


def test_a_universe_that_cannot_be_imported_stops_start_up_naming_it(tmp_path):
    package = scaffold.create("rocket", tmp_path / "univers-rocket")
    plugin = package / "univers_rocket" / "plugin.py"
    plugin.write_text(plugin.read_text().replace("from core.universe import Universe", "from core.universe import Universes"))
    pip_install(package, tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "UNIVERS_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "core.cli", "plugins", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and done.stdout.strip() == "", done.stdout[-500:]
    assert "'rocket'" in done.stdout + done.stderr and "Universes" in done.stdout + done.stderr, (done.stdout + done.stderr)[-2000:]
