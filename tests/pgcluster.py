"""A private PostgreSQL cluster for the drills that restart or replicate the server: made by
``initdb`` on a free port under a temporary directory, stopped and deleted afterwards, never
the shared server of the other tests.

Without PostgreSQL's binaries (``/usr/lib/postgresql/*/bin``) the tests that need one are
skipped, unless ``UNIVERS_REQUIRE_POSTGRES=1`` (CI) makes that a failure, as
:mod:`core.testing` does for the shared server. The server runs as the current user; as
root, as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _unavailable(reason: str):
    if os.environ.get("UNIVERS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"a private PostgreSQL cluster is required here: {reason}")
    pytest.skip(reason)


class Cluster:
    """A PostgreSQL server of one's own: ``url``, ``restart()``, ``stop()``."""

    def __init__(self, primary: "Cluster | None" = None):
        """A new cluster; or, given ``primary``, a streaming replica of it (``pg_basebackup -R``)."""
        self.bin = binaries()
        if self.bin is None:
            _unavailable("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.as_user: list[str] = []
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                _unavailable("running as root and there is no postgres user to run the server as")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="univers-pg-"))
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        try:
            if primary is None:
                self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
            else:
                self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D", str(self.data),
                          "-R", "-X", "stream", "--no-sync")
            self._ctl("start")
        except subprocess.CalledProcessError as exc:
            self.remove()
            _unavailable(f"could not start a private cluster: {exc.stderr or exc.stdout}")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> str:
        return subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True, capture_output=True, text=True,
                              cwd=self.dir, timeout=60).stdout

    def _ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "-o", options, *args)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection cut, the server back once it accepts them."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w"],
                       capture_output=True, timeout=60)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
