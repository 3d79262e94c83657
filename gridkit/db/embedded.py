"""gridkit's own private PostgreSQL + PostGIS cluster, kept in a data directory under GRIDKIT_HOME.

The cluster is gridkit's alone: the server listens only on a Unix socket (no TCP) in a directory
only its owner may enter (0700, socket 0700), and every role needs its password (scram-sha-256;
no trust). The passwords are kept in GRIDKIT_HOME/pgpass (mode 0600, libpq's passfile format).
Three roles: `gridkit_admin`, the superuser that creates databases and extensions;
`gridkit_owner`, who owns the schema and runs migrations; `gridkit`, the application, which
may read and write rows but is no superuser and owns nothing. The server runs as an
unprivileged user: as root, the `postgres` system user that Debian's packages create;
otherwise, the calling user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from gridkit.errors import SetupError
from gridkit.rules import local_tz

PG_MAJOR = 15
DEFAULT_PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
POSTGIS_CONTROL = Path(f"/usr/share/postgresql/{PG_MAJOR}/extension/postgis.control")
DB_NAME = "gridkit"
APP_ROLE = DB_USER = "gridkit"
OWNER_ROLE = "gridkit_owner"
ADMIN_ROLE = "gridkit_admin"
ROLES = (ADMIN_ROLE, OWNER_ROLE, APP_ROLE)
PASSFILE = "pgpass"
# What the application role may do with the owner's tables and sequences (no DDL, no TRUNCATE: a first load empties
# a table through the owner's gridkit_truncate_for_load, migration 20261204_imp9f).
APP_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
APP_SEQUENCE_PRIVILEGES = "USAGE, SELECT, UPDATE"
# Tables the application role reads and never writes: the settings `gridkit db up` gives the database as its owner
# (gridkit_config: the city's time zone), the migrations' revision, PostGIS's coordinate systems (whose
# definitions every reprojection follows). Migration 20261208_pii9g revokes the writes from gridkit's own
# tables, EmbeddedCluster.grant again after every grant of the whole schema (each start, each restore).
APP_READ_ONLY_TABLES = ("gridkit_config", "alembic_version", "spatial_ref_sys", "geometry_columns", "geography_columns")
# Append-only for the application: who read which personal data, and each case's steps (who, when, from, to).
# Only the owner rewrites them (`gridkit db archive-audit` moves old audit rows out as the owner).
APP_APPEND_ONLY_TABLES = ("audit_log", "incident_history")
# Derived tables the application role reads and the database writes (migration 20261209_sec10b): the evaluation's
# and the heatmap's rollups and the residents' change log, by triggers running as the owner; the resident summary,
# by the owner's functions (gridkit.reports.resident_summary). Nobody can forge them apart from what they count.
APP_DERIVED_TABLES = (
    "incident_eval",
    "incident_heat",
    "resident_change",
    "resident_cell_summary",
    "resident_split_household",
)
# Functions only `gridkit db up` runs, as the owner: not the application's (EXECUTE revoked from PUBLIC).
# (Names of functions without arguments.)
OWNER_ONLY_FUNCTIONS = ("gridkit_rebuild_incident_eval",)
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


# How the private server writes its log (WAL), given at every start so that clusters made by an older
# gridkit get it too. The cluster is gridkit's alone and backed up by pg_dump (gridkit db backup): no
# standby nor archive reads its WAL, so only what crash recovery needs is logged (wal_level minimal: an
# index or table built in the transaction that made it is written, not logged), page images are
# compressed, and a bulk write of millions of rows (a first assignment) is not interrupted by checkpoints
# that would log every page it touches again.
WRITE_SETTINGS = (
    "wal_level=minimal",
    "max_wal_senders=0",
    "wal_compression=on",
    "max_wal_size=4GB",
    "checkpoint_timeout=15min",
)

# The server's log: its own logging collector writes one file per weekday in GRIDKIT_HOME/log (log_directory
# is relative to the data directory), each emptied when its day comes round again, so the log holds the last
# seven days and stops growing. `pg_ctl -l` (self.log_file) then receives only what the server says before
# the collector starts (a port in use, a data directory it cannot read). Given at each start: a cluster made
# by an older gridkit gets them too.
LOG_SETTINGS = (
    "logging_collector=on",
    "log_directory=../log",
    "log_filename=postgresql-%a.log",
    "log_truncate_on_rotation=on",
    "log_rotation_age=1d",
    "log_rotation_size=0",
)


class EmbeddedCluster:
    """A private PostgreSQL cluster in `home`: initialise, start, stop, report."""

    def __init__(self, home: Path, *, pg_bin: Path | None = None, port: int = 5432, fast: bool = False):
        self.home = Path(home).absolute()
        self.data_dir = self.home / "pgdata"
        self.log_file = self.home / "log" / "postgres.log"
        self.passfile = self.home / PASSFILE
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
            raise SetupError("db.no_postgres_user") from None
        return "postgres"

    def _run(self, args: list[str], *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs = {}
        if os.geteuid() == 0:
            kwargs["user"] = self.server_user
            kwargs["group"] = pwd.getpwnam(self.server_user).pw_gid
            kwargs["extra_groups"] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd="/", env=env, **kwargs)
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise SetupError(
                "db.program_failed",
                program=Path(args[0]).name,
                detail=detail[-1] if detail else "-",
                log=str(self.log_file),
            )
        return proc

    # -- checks ----------------------------------------------------------------
    def check_installed(self) -> None:
        """Raise SetupError unless PostgreSQL 15 and PostGIS 3 are installed."""
        for prog in ("initdb", "pg_ctl", "postgres"):
            if not (self.pg_bin / prog).exists():
                raise SetupError("db.postgres_missing", major=PG_MAJOR, path=str(self.pg_bin / prog))
        if self.pg_bin == DEFAULT_PG_BIN and not POSTGIS_CONTROL.exists():
            raise SetupError("db.postgis_missing", major=PG_MAJOR, path=str(POSTGIS_CONTROL))

    def _prepare_dirs(self) -> None:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            probe = self.home / ".write-test"
            probe.write_text("ok")
            probe.unlink()
            (self.home / "log").mkdir(exist_ok=True)
            # Only the server's user may enter the socket directory: no other OS user reaches the server.
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            os.chmod(self.socket_dir, 0o700)
        except OSError as exc:
            raise SetupError("db.home_not_writable", home=str(self.home), reason=exc.strerror) from None
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
                raise SetupError("db.home_unreachable", home=str(self.home), user=self.server_user)

    # -- passwords -------------------------------------------------------------
    def passwords(self) -> dict[str, str]:
        """Return the password of each role, read from GRIDKIT_HOME/pgpass."""
        found = {}
        try:
            lines = self.passfile.read_text().splitlines()
        except OSError:
            return found
        for line in lines:
            parts = line.split(":")
            if len(parts) == 5:
                found[parts[3]] = parts[4]
        return found

    def _write_passfile(self) -> dict[str, str]:
        """Make a password for every role and keep them in GRIDKIT_HOME/pgpass (mode 0600)."""
        passwords = {role: secrets.token_hex(24) for role in ROLES}
        # O_EXCL with mode 0600: the passwords are never readable by others, not even for a moment.
        self.passfile.unlink(missing_ok=True)
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"*:*:*:{role}:{pw}\n" for role, pw in passwords.items()))
        return passwords

    def _check_secured(self) -> None:
        """Refuse a cluster made by an older gridkit that trusted every local user."""
        if self.initialised and ADMIN_ROLE not in self.passwords():
            raise SetupError("db.insecure_cluster", data_dir=str(self.data_dir), passfile=str(self.passfile))

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
                raise SetupError("db.wrong_version", data_dir=str(self.data_dir), version=version, major=PG_MAJOR)
            self._check_secured()
            return False
        passwords = self._write_passfile()
        # initdb reads the superuser's password from a file the server's user can read; it is removed at once.
        pwfile = self.home / "log" / ".initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(passwords[ADMIN_ROLE] + "\n")
        if os.geteuid() == 0:
            user = pwd.getpwnam(self.server_user)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            self._run(
                [
                    str(self.pg_bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    ADMIN_ROLE,
                    f"--pwfile={pwfile}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=reject",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                timeout=300,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = [
            "# written by gridkit: a private server reachable only through its Unix socket",
            "listen_addresses = ''",
            f"unix_socket_directories = '{self.socket_dir}'",
            "unix_socket_permissions = 0700",
            "password_encryption = 'scram-sha-256'",
            f"port = {self.port}",
            "max_connections = 50",
            "shared_buffers = 256MB",
            "work_mem = 32MB",
            "maintenance_work_mem = 256MB",
            f"timezone = '{local_tz().key}'",
        ]
        if self.fast:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data_dir / "postgresql.auto.conf", "a") as fh:
            fh.write("\n".join(conf) + "\n")
        # Only password logins over the socket; no trust, no TCP.
        (self.data_dir / "pg_hba.conf").write_text(
            "# written by gridkit: every role logs in with its password (kept in GRIDKIT_HOME/pgpass)\n"
            "local   all   all   scram-sha-256\n"
        )
        return True

    def pid(self) -> int | None:
        """Return the server's pid if it is running."""
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _is_server(pid) else None

    @property
    def running(self) -> bool:
        """True when the server answers on its socket."""
        return self.pid() is not None and (self.socket_dir / f".s.PGSQL.{self.port}").exists()

    def start(self) -> bool:
        """Start the server if it is not running; return True if it was started."""
        self._check_secured()
        if self.running:
            return False
        self.check_installed()
        self._prepare_dirs()
        self._drop_stale_pidfile()
        proc = self._run(
            [
                str(self.pg_bin / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                f"-k {self.socket_dir} -p {self.port} " + " ".join(f"-c {s}" for s in (*WRITE_SETTINGS, *LOG_SETTINGS)),
                "start",
            ],
            check=False,
        )
        if proc.returncode != 0:
            raise SetupError("db.did_not_start", reason=self._log_tail(), log=str(self._newest_log()))
        return True

    def _drop_stale_pidfile(self) -> None:
        """Remove the lock files (postmaster.pid, the socket's) of a server that is gone: killed with -9, its
        pid a zombie or, after a reboot, another program's. The server refuses to start while the pid in
        either belongs to a live process. Its other guard stays: it still refuses while old server
        processes use the cluster's shared memory."""
        for lock in (self.data_dir / "postmaster.pid", self.socket_dir / f".s.PGSQL.{self.port}.lock"):
            try:
                pid = int(lock.read_text().splitlines()[0])
            except (OSError, ValueError, IndexError):
                continue
            if not _is_server(pid):
                lock.unlink(missing_ok=True)

    def stop(self) -> bool:
        """Stop the server if it is running; return True if it was stopped."""
        if self.pid() is None:
            return False
        self._run([str(self.pg_bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"])
        return True

    def destroy(self) -> None:
        """Stop the server and delete the cluster (used for throwaway test clusters)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        self.passfile.unlink(missing_ok=True)

    def log_files(self) -> list[Path]:
        """Return the server's log files, the one written last first (pg_ctl's, the collector's weekdays)."""
        found = [self.log_file, *self.log_file.parent.glob("postgresql-*.log")]
        dated = []
        for path in found:
            try:
                dated.append((path.stat().st_mtime, path))
            except OSError:
                continue
        return [path for _, path in sorted(dated, reverse=True)]

    def _newest_log(self) -> Path:
        """Return the log file written last (pg_ctl's before a first start)."""
        return next(iter(self.log_files()), self.log_file)

    def _log_tail(self) -> str:
        try:
            lines = [line for line in self._newest_log().read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "-"
        errors = [line for line in lines if "FATAL" in line or "ERROR" in line]
        return (errors or lines or ["-"])[-1].strip()

    # -- database --------------------------------------------------------------
    def url(self, dbname: str = DB_NAME, role: str = APP_ROLE) -> str:
        """Return the SQLAlchemy URL of a database in this cluster for `role` (over the Unix socket).

        The URL holds no password: libpq reads it from GRIDKIT_HOME/pgpass (`passfile`).
        """
        return f"postgresql+psycopg://{role}@/{dbname}?host={self.socket_dir}&port={self.port}&passfile={self.passfile}"

    def conninfo(self, dbname: str = DB_NAME, role: str = APP_ROLE) -> dict:
        """Return psycopg/libpq connection keywords for `role` on database `dbname`."""
        return {
            "dbname": dbname,
            "user": role,
            "host": str(self.socket_dir),
            "port": self.port,
            "passfile": str(self.passfile),
        }

    def connect(self, dbname: str = DB_NAME, role: str = ADMIN_ROLE, **kwargs) -> psycopg.Connection:
        """Return an autocommit psycopg connection as `role` (the superuser by default)."""
        return psycopg.connect(autocommit=True, **self.conninfo(dbname, role), **kwargs)

    def ensure_roles(self) -> None:
        """Create the owner and application roles if missing (neither a superuser), with their passwords."""
        passwords = self.passwords()
        with self.connect("postgres") as conn:
            for role in (OWNER_ROLE, APP_ROLE):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                verb = "ALTER" if exists else "CREATE"
                conn.execute(
                    sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                        sql.SQL(verb), sql.Identifier(role), sql.Literal(passwords[role])
                    )
                )

    def ensure_database(self, dbname: str = DB_NAME) -> bool:
        """Create the database (owned by the owner role) with postgis and the application's grants.

        Returns True if the database was created. Running it again only renews the grants.
        """
        self.ensure_roles()
        created = False
        with self.connect("postgres") as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(OWNER_ROLE))
                )
                created = True
        self.grant(dbname)
        return created

    def grant(self, dbname: str = DB_NAME) -> None:
        """Give the application role rights on rows (now and for every table the owner creates later)."""
        db, owner, app = sql.Identifier(dbname), sql.Identifier(OWNER_ROLE), sql.Identifier(APP_ROLE)
        tables, sequences = sql.SQL(APP_TABLE_PRIVILEGES), sql.SQL(APP_SEQUENCE_PRIVILEGES)
        with self.connect(dbname) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            for statement in (
                "REVOKE ALL ON DATABASE {db} FROM PUBLIC",
                "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {app}",
                "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {owner}",
                "ALTER SCHEMA public OWNER TO {owner}",
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                "GRANT USAGE ON SCHEMA public TO {app}",
                "GRANT {tables} ON ALL TABLES IN SCHEMA public TO {app}",
                "GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {app}",
                "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT {tables} ON TABLES TO {app}",
                "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT {sequences} ON SEQUENCES TO {app}",
            ):
                conn.execute(sql.SQL(statement).format(db=db, owner=owner, app=app, tables=tables, sequences=sequences))
            _restrict_app(conn, app)

    def drop_database(self, dbname: str) -> None:
        """Drop a database of this cluster if it exists."""
        with self.connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))

    def status(self) -> ClusterStatus:
        """Return the cluster's state without changing anything."""
        return ClusterStatus(
            initialised=self.initialised,
            running=self.running,
            pid=self.pid(),
            data_dir=str(self.data_dir),
            socket_dir=str(self.socket_dir),
            port=self.port,
            url=self.url(),
            log_file=str(self._newest_log()),
            server_user=self.server_user if self.pg_bin.exists() or os.geteuid() != 0 else "postgres",
        )

    def wait_ready(self, timeout: float = 30) -> None:
        """Block until the server accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect("postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise SetupError("db.not_answering", reason=self._log_tail()) from None
                time.sleep(0.2)


def _restrict_app(conn: psycopg.Connection, app: sql.Identifier) -> None:
    """Take back from the application role the writes that the grant of every table just gave it on the
    read-only, derived and append-only tables, and the owner-only functions from PUBLIC (those that exist yet)."""
    revokes = [(name, "INSERT, UPDATE, DELETE") for name in APP_READ_ONLY_TABLES + APP_DERIVED_TABLES]
    revokes += [(name, "UPDATE, DELETE") for name in APP_APPEND_ONLY_TABLES]
    for name, privileges in revokes:
        if conn.execute("SELECT to_regclass(%s)", (f"public.{name}",)).fetchone()[0] is not None:
            conn.execute(
                sql.SQL("REVOKE {} ON public.{} FROM {}").format(sql.SQL(privileges), sql.Identifier(name), app)
            )
    for function in OWNER_ONLY_FUNCTIONS:
        if conn.execute("SELECT to_regprocedure(%s)", (f"public.{function}()",)).fetchone()[0] is not None:
            conn.execute(sql.SQL("REVOKE EXECUTE ON FUNCTION public.{}() FROM PUBLIC").format(sql.Identifier(function)))


def _is_server(pid: int) -> bool:
    """Return whether process `pid` is a live PostgreSQL server (not a zombie, not another program);
    when /proc cannot tell, whether it is alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path("/proc") / str(pid)
    try:
        status = (proc / "status").read_text()
        command = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    if any(line.split()[1:2] == ["Z"] for line in status.splitlines() if line.startswith("State:")):
        return False
    return Path(command.split()[0] if command else "").name in ("postgres", "postmaster")
