"""gridkit's own private PostgreSQL + PostGIS cluster, kept in a data directory under GRIDKIT_HOME.

The server listens only on a Unix socket (no TCP), trusts local connections from the
socket alone, and runs as an unprivileged user: as root, the `postgres` system user that
Debian's packages create; otherwise, the calling user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gridkit.errors import SetupError

PG_MAJOR = 15
DEFAULT_PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
POSTGIS_CONTROL = Path(f"/usr/share/postgresql/{PG_MAJOR}/extension/postgis.control")
DB_NAME = "gridkit"
DB_USER = "gridkit"
INSTALL_HINT = "run `bash scripts/setup.sh` (it installs postgresql-15-postgis-3)"
# Unix socket paths are limited to 107 bytes; '.s.PGSQL.NNNNN' takes 14 of them.
MAX_SOCKET_DIR = 90


@dataclass
class ClusterStatus:
    """What `gridkit db status` reports about the embedded cluster."""

    initialised: bool
    running: bool
    pid: int | None
    data_dir: str
    socket_dir: str
    port: int
    url: str
    log_file: str
    server_user: str


class EmbeddedCluster:
    """A private PostgreSQL cluster in `home`: initialise, start, stop, report."""

    def __init__(self, home: Path, *, pg_bin: Path | None = None, port: int = 5432,
                 fast: bool = False):
        self.home = Path(home).absolute()
        self.data_dir = self.home / "pgdata"
        self.log_file = self.home / "log" / "postgres.log"
        self.port = port
        self.pg_bin = Path(pg_bin) if pg_bin else DEFAULT_PG_BIN
        # fast: no fsync, for throwaway test clusters only.
        self.fast = fast
        socket_dir = self.home / "run"
        if len(str(socket_dir)) > MAX_SOCKET_DIR:
            digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
            socket_dir = Path(tempfile.gettempdir()) / f"gridkit-{digest}"
        self.socket_dir = socket_dir

    # -- who runs the server -------------------------------------------------
    @property
    def server_user(self) -> str:
        """Return the name of the unprivileged user the server runs as."""
        if os.geteuid() != 0:
            return pwd.getpwuid(os.geteuid()).pw_name
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise SetupError(f"running as root but there is no 'postgres' user: {INSTALL_HINT}.")
        return "postgres"

    def _run(self, args: list[str], *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs = {}
        if os.geteuid() == 0:
            kwargs["user"] = self.server_user
            kwargs["group"] = pwd.getpwnam(self.server_user).pw_gid
            kwargs["extra_groups"] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              cwd="/", env=env, **kwargs)
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise SetupError(f"{Path(args[0]).name} failed: {detail[-1] if detail else 'no output'} "
                             f"(see {self.log_file})")
        return proc

    # -- checks ----------------------------------------------------------------
    def check_installed(self) -> None:
        """Raise SetupError unless PostgreSQL 15 and PostGIS 3 are installed."""
        for prog in ("initdb", "pg_ctl", "postgres"):
            if not (self.pg_bin / prog).exists():
                raise SetupError(f"PostgreSQL {PG_MAJOR} is not installed ({self.pg_bin / prog} "
                                 f"is missing): {INSTALL_HINT}, or set GRIDKIT_PG_BIN.")
        if self.pg_bin == DEFAULT_PG_BIN and not POSTGIS_CONTROL.exists():
            raise SetupError(f"PostGIS is not installed for PostgreSQL {PG_MAJOR} "
                             f"({POSTGIS_CONTROL} is missing): {INSTALL_HINT}.")

    def _prepare_dirs(self) -> None:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            probe = self.home / ".write-test"
            probe.write_text("ok")
            probe.unlink()
            (self.home / "log").mkdir(exist_ok=True)
            self.socket_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise SetupError(f"GRIDKIT_HOME={self.home} is not writable ({exc.strerror}): "
                             "choose a directory you can write to, e.g. GRIDKIT_HOME=./var.")
        if os.geteuid() == 0:
            user = pwd.getpwnam(self.server_user)
            for path in (self.home / "log", self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
            if self.log_file.exists():
                os.chown(self.log_file, user.pw_uid, user.pw_gid)
            if not self.data_dir.exists():
                self.data_dir.mkdir(mode=0o700)
                os.chown(self.data_dir, user.pw_uid, user.pw_gid)
            probe = self._run(["/usr/bin/test", "-w", str(self.data_dir)], check=False)
            if probe.returncode != 0:
                raise SetupError(
                    f"GRIDKIT_HOME={self.home} cannot be reached by the '{self.server_user}' user "
                    "that runs the database server: choose a GRIDKIT_HOME outside private "
                    "directories such as /root, or make its parents world-searchable (chmod o+x).")

    # -- lifecycle -------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        """True when the data directory holds a cluster."""
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> bool:
        """Create the cluster if there is none; return True if it was created."""
        self.check_installed()
        self._prepare_dirs()
        if self.initialised:
            version = (self.data_dir / "PG_VERSION").read_text().strip()
            if version != str(PG_MAJOR):
                raise SetupError(f"{self.data_dir} holds a PostgreSQL {version} cluster, not {PG_MAJOR}: "
                                 "move it away or choose another GRIDKIT_HOME.")
            return False
        self._run([str(self.pg_bin / "initdb"), "-D", str(self.data_dir), "-U", DB_USER,
                   "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"], timeout=300)
        conf = [
            "# written by gridkit: a private server reachable only through its Unix socket",
            "listen_addresses = ''",
            f"unix_socket_directories = '{self.socket_dir}'",
            f"port = {self.port}",
            "max_connections = 50",
            "shared_buffers = 256MB",
            "work_mem = 32MB",
            "maintenance_work_mem = 256MB",
            "timezone = 'Asia/Shanghai'",
        ]
        if self.fast:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data_dir / "postgresql.auto.conf", "a") as fh:
            fh.write("\n".join(conf) + "\n")
        return True

    def pid(self) -> int | None:
        """Return the server's pid if it is running."""
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    @property
    def running(self) -> bool:
        """True when the server answers on its socket."""
        return self.pid() is not None and (self.socket_dir / f".s.PGSQL.{self.port}").exists()

    def start(self) -> bool:
        """Start the server if it is not running; return True if it was started."""
        if self.running:
            return False
        self.check_installed()
        self._prepare_dirs()
        proc = self._run([str(self.pg_bin / "pg_ctl"), "-D", str(self.data_dir), "-l",
                          str(self.log_file), "-w", "-t", "60", "-o",
                          f"-k {self.socket_dir} -p {self.port}", "start"], check=False)
        if proc.returncode != 0:
            raise SetupError(f"the embedded database did not start: {self._log_tail()} "
                             f"(full log: {self.log_file})")
        return True

    def stop(self) -> bool:
        """Stop the server if it is running; return True if it was stopped."""
        if self.pid() is None:
            return False
        self._run([str(self.pg_bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                   "-t", "60", "stop"])
        return True

    def destroy(self) -> None:
        """Stop the server and delete the cluster (used for throwaway test clusters)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            lines = [l for l in self.log_file.read_text(errors="replace").splitlines() if l.strip()]
        except OSError:
            return "no log written"
        errors = [l for l in lines if "FATAL" in l or "ERROR" in l]
        return (errors or lines or ["no log written"])[-1].strip()

    # -- database --------------------------------------------------------------
    def url(self, dbname: str = DB_NAME) -> str:
        """Return the SQLAlchemy URL of a database in this cluster (over the Unix socket)."""
        return f"postgresql+psycopg://{DB_USER}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def ensure_database(self, dbname: str = DB_NAME) -> bool:
        """Create the database and the postgis extension if missing; return True if created."""
        import psycopg

        conninfo = dict(host=str(self.socket_dir), port=self.port, user=DB_USER)
        created = False
        with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{dbname}"')
                created = True
        with psycopg.connect(dbname=dbname, autocommit=True, **conninfo) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return created

    def drop_database(self, dbname: str) -> None:
        """Drop a database of this cluster if it exists."""
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True, host=str(self.socket_dir),
                             port=self.port, user=DB_USER) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    def status(self) -> ClusterStatus:
        """Return the cluster's state without changing anything."""
        return ClusterStatus(
            initialised=self.initialised, running=self.running, pid=self.pid(),
            data_dir=str(self.data_dir), socket_dir=str(self.socket_dir), port=self.port,
            url=self.url(), log_file=str(self.log_file),
            server_user=self.server_user if self.pg_bin.exists() or os.geteuid() != 0 else "postgres")

    def wait_ready(self, timeout: float = 30) -> None:
        """Block until the server accepts connections."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(dbname="postgres", host=str(self.socket_dir), port=self.port,
                                user=DB_USER, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise SetupError(f"the embedded database is not answering: {self._log_tail()}")
                time.sleep(0.2)
