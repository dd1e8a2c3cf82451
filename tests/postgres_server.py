"""Real PostgreSQL servers for the engine tests: a throwaway cluster on loopback, and replicas.

The server binaries come from the system (Debian's ``postgresql`` package: .ci/run installs it
where missing). PostgreSQL refuses to run as root, so under root (CI) each server runs as the
``postgres`` user, in a folder that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    for candidate in [*sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
                      os.path.dirname(shutil.which("initdb") or "")]:
        if candidate and Path(candidate, "initdb").is_file() and Path(candidate, "pg_ctl").is_file():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """One running PostgreSQL server on 127.0.0.1."""

    data: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
             check=False)

    def replica(self) -> Server:
        """A streaming replica of this server (pg_basebackup -R), started and accepting reads."""
        data = _folder("kb-replica-")
        port = _free_port()
        _run([str(self.bin / "pg_basebackup"), "-D", str(data), "-R", "-X", "stream",
              "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"])
        server = Server(data, port, self.bin)
        _start(server)
        return server


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_as_postgres(command), check=check, capture_output=True, text=True, timeout=120)


def _folder(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    root.chmod(0o700)
    return root


def _start(server: Server) -> None:
    options = (f"-p {server.port} -c listen_addresses=127.0.0.1 -k {server.data} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    _run([str(server.bin / "pg_ctl"), "-D", str(server.data), "-o", options,
          "-l", str(server.data / "server.log"), "-w", "-t", "60", "start"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"PostgreSQL did not listen on {server.port}")


def start_primary() -> Server:
    """A new cluster (trust authentication on loopback only), started."""
    folder = binaries()
    if folder is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    data = _folder("kb-postgres-")
    _run([str(folder / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
          "--locale", "C"])
    server = Server(data, _free_port(), folder)
    _start(server)
    return server


def remove(server: Server) -> None:
    server.stop()
    shutil.rmtree(server.data, ignore_errors=True)
