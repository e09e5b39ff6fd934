"""Redis and PostgreSQL servers of the tests' own: started from the installed binaries on a free
port of 127.0.0.1 in a temporary folder, stopped (or crashed) by the tests, removed afterwards.

The test suite never stops, restarts, flushes or reconfigures the machine's own servers. Where a
binary is missing, the tests that need it skip with the reason, except on CI (CI=true), where
they fail."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

ON_CI = os.environ.get("CI", "").lower() == "true"
START_TIMEOUT_S = 60.0  # generous: the CI machine has 2 cores and runs much at once
PG_SUPERUSER = "postgres"  # the cluster's superuser, with trust authentication on 127.0.0.1


def free_port() -> int:
    """A TCP port nobody listens on right now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unavailable(reason: str) -> NoReturn:
    """Skip the test for `reason`; on CI, where every server must be there, fail it."""
    if ON_CI:
        pytest.fail(f"{reason} (CI=true)")
    pytest.skip(reason)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A `redis-server` without persistence in a folder of its own."""

    port: int
    process: subprocess.Popen[bytes]
    folder: Path

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_redis(folder: Path) -> RedisServer:
    """A fresh Redis on a free port, answering PING; skips (fails on CI) without `redis-server`."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (the Redis tests start their own)")
    log = folder / "redis.log"
    for _ in range(3):  # another process may take the free port before Redis binds it
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder), "--logfile", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            if _answers_ping(port):
                return RedisServer(port, process, folder)
            time.sleep(0.05)
        RedisServer(port, process, folder).stop()
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise RuntimeError(f"redis-server did not start in {folder}:\n{tail}")


def postgres_binaries() -> Path | None:
    """The folder of the newest installed `initdb`, `pg_ctl` and `postgres`: Debian's
    /usr/lib/postgresql/N/bin, else wherever `pg_ctl` is on the PATH (Homebrew, other distros)."""

    def major(folder: Path) -> int:
        return int(folder.parent.name) if folder.parent.name.isdigit() else -1

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb in a temporary folder, trust authentication,
    listening on 127.0.0.1 only) that a test may stop and start again.

    PostgreSQL refuses to run as root; under root the cluster belongs to, and runs as, the
    `postgres` OS user (its folder is then made under the system's temporary folder, since
    pytest's folders are private to root)."""

    def __init__(self, binaries: Path, folder: Path, owner: pwd.struct_passwd | None) -> None:
        self.binaries = binaries
        self.folder = folder
        self.owner = owner
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{PG_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        owner = self.owner
        try:
            subprocess.run(
                [str(self.binaries / command[0]), *command[1:]],
                check=True,
                capture_output=True,
                timeout=120,
                cwd=self.folder,
                user=owner.pw_uid if owner else None,
                group=owner.pw_gid if owner else None,
                extra_groups=[] if owner else None,
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stdout + exc.stderr).decode(errors="replace")
            raise RuntimeError(
                f"{' '.join(command)} failed:\n{output}\n{self.log_tail()}"
            ) from exc

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", PG_SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        """Start (again) on the same port; returns once it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", str(int(START_TIMEOUT_S)), "-o", options,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects every client and shuts down cleanly; `immediate` is a crash
        (recovery runs at the next start)."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def _kill_postmaster(self) -> None:
        """SIGKILL the postmaster named in postmaster.pid, only if that pid is still this
        cluster's postgres (a stale file may name a pid some other process has now)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if Path(os.fsdecode(command[0])).name == "postgres" and str(self.data).encode() in (
                b" ".join(command)
            ):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Stop whatever is left running and delete the cluster."""
        if self.running():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres(folder: Path) -> PostgresServer:
    """A new cluster, started; skips (fails on CI) without PostgreSQL's server binaries.
    `folder` is used when not running as root."""
    binaries = postgres_binaries()
    if binaries is None:
        unavailable(
            "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: the tests that "
            "stop a database start their own"
        )
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run PostgreSQL as")
        folder = Path(tempfile.mkdtemp(prefix="daka-pg-"))
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(binaries, folder, owner)
    try:
        server.init()
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
