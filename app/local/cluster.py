"""A Postgres 15 cluster in a folder of ours: created, configured, started and stopped.

Postgres refuses to run as root, so when we are root the server runs as a dedicated OS user
(Debian's `postgres`); otherwise it runs as whoever invoked us. The same code serves the
developer's `.local/` cluster and the throwaway clusters the tests build.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
ROOT_OS_USER = os.environ.get("PG_OS_USER", "postgres")
SUPERUSER = "postgres"
# Unix socket paths are limited to 107 bytes; past that the socket goes to a short temp path.
MAX_SOCKET_PATH = 100


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message says why."""


@dataclass(frozen=True)
class Cluster:
    root: Path
    port: int
    durable: bool = True
    cron_database: str = "postgres"
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "log" / "postgresql.log"

    @property
    def socket_dir(self) -> Path:
        preferred = self.root / "run"
        if len(str(preferred / f".s.PGSQL.{self.port}")) <= MAX_SOCKET_PATH:
            return preferred
        return Path("/tmp") / f"easymo-pg-{self.port}"  # noqa: S108 - owned and 0700

    @property
    def os_user(self) -> str | None:
        """The OS user the server runs as; None means the invoking user."""
        return ROOT_OS_USER if os.geteuid() == 0 else None

    def exists(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.exists():
            return False
        status = self._pg_ctl("status", check=False)
        return status.returncode == 0

    def url(self, password: str, user: str = SUPERUSER, database: str = "postgres") -> str:
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}"
        )

    def socket_conninfo(self, database: str = "postgres") -> str:
        """Superuser over the private socket (trust): for set-up before any password exists."""
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={database}"

    def init(self) -> None:
        """initdb into root/data; the caller sets passwords once the server is up."""
        if self.exists():
            return
        for folder in (self.root, self.data_dir.parent, self.log_file.parent, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._hand_over(self.root)
        self._hand_over(self.socket_dir)
        self._grant_traverse(self.root)
        self._run(
            [
                str(PG_BINDIR / "initdb"),
                "--pgdata", str(self.data_dir),
                "--username", SUPERUSER,
                "--encoding", "UTF8",
                "--locale", "C.UTF-8",
                "--auth-local", "trust",
                "--auth-host", "scram-sha-256",
            ]
        )  # fmt: skip
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude 'easymo.conf'\n")
        (self.data_dir / "pg_hba.conf").write_text(HBA)
        self._hand_over(self.data_dir / "pg_hba.conf")

    def start(self) -> None:
        if self.is_running():
            return
        if not self.exists():
            raise ClusterError(f"no cluster at {self.data_dir}; create it first")
        self._refuse_busy_port()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._hand_over(self.socket_dir)
        self.socket_dir.chmod(0o700)
        self._write_settings()
        result = self._pg_ctl(
            "start", "--wait", "--timeout", "60", "--log", str(self.log_file), check=False
        )
        if result.returncode != 0:
            raise ClusterError(f"Postgres did not start:\n{self._log_tail()}")

    def stop(self) -> None:
        if self.is_running():
            self._pg_ctl("stop", "--wait", "--mode", "fast")

    def restart(self, mode: str = "fast") -> None:
        """mode immediate: as after a crash (no checkpoint; recovery empties unlogged tables and
        starts unlogged sequences again)."""
        self._write_settings()
        result = self._pg_ctl(
            "restart", "--wait", "--mode", mode, "--log", str(self.log_file), check=False
        )
        if result.returncode != 0:
            raise ClusterError(f"Postgres did not restart:\n{self._log_tail()}")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self.socket_dir.parent != self.root:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _write_settings(self) -> None:
        path = self.data_dir / "easymo.conf"
        path.write_text(settings_file(self))
        self._hand_over(path)

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BINDIR / "pg_ctl"), "--pgdata", str(self.data_dir), *args]
        return self._run(command, check=check)

    def _run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        if self.os_user:
            command = ["runuser", "-u", self.os_user, "--", *command]
        # The server inherits this environment: keep the caller's libpq settings out of it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd="/", check=False
        )
        if check and result.returncode != 0:
            raise ClusterError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
        return result

    def _hand_over(self, path: Path) -> None:
        """Give a path to the server's OS user (a no-op when we are that user)."""
        if not self.os_user:
            return
        account = pwd.getpwnam(self.os_user)
        for current in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.chown(current, account.pw_uid, account.pw_gid, follow_symlinks=False)

    def _grant_traverse(self, path: Path) -> None:
        """Postgres must reach its data directory: add o+x to any ancestor that lacks it."""
        if not self.os_user:
            return
        probe = ["runuser", "-u", self.os_user, "--", "test", "-x", str(path)]
        if subprocess.run(probe, check=False).returncode == 0:
            return
        for ancestor in reversed(path.parents):
            mode = ancestor.stat().st_mode
            if not mode & stat.S_IXOTH:
                print(f"granting o+x on {ancestor} so the {self.os_user} user can reach {path}")
                ancestor.chmod(mode | stat.S_IXOTH)

    def _refuse_busy_port(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex((self.host, self.port)) == 0:
                raise ClusterError(
                    f"port {self.port} on {self.host} is taken by another server; stop it or set "
                    "another port"
                )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log_file})"


def free_port() -> int:
    """A TCP port nothing listens on now, for a throwaway cluster or server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def set_password(conninfo: str, role: str, password: str) -> None:
    """ALTER ROLE ... PASSWORD with both quoted: passwords are generated, roles are ours."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("alter role {} password {}").format(sql.Identifier(role), sql.Literal(password))
        )


# The socket lives in a 0700 folder, so only the server's OS user and root can reach it:
# trust there is for set-up and pg_cron. Everything over TCP needs a password.
HBA = """\
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def settings_file(cluster: Cluster) -> str:
    """postgresql.conf for a 2-core machine, rewritten at every start so changes here apply."""
    durability = (
        "" if cluster.durable else "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
    )
    return f"""\
# Written by app/local/cluster.py at every start; edit that file, not this one.
listen_addresses = '{cluster.host}'
port = {cluster.port}
unix_socket_directories = '{cluster.socket_dir}'
max_connections = 100
shared_buffers = 256MB
effective_cache_size = 2GB
work_mem = 16MB
maintenance_work_mem = 128MB
max_worker_processes = 8
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
max_parallel_maintenance_workers = 1
jit = off
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
shared_preload_libraries = 'pg_cron, pg_stat_statements, plpgsql_check'
cron.database_name = '{cluster.cron_database}'
cron.host = '{cluster.socket_dir}'
pg_stat_statements.track = all
{durability}"""
