"""A throwaway PostgreSQL cluster from the machine's own server binaries.

Used by `make demo`, the tests and the benchmark when no DSN is configured. As root
(initdb refuses to run as root) the server runs as the `postgres` OS user.

    python -m sparkify.pg_cluster start .local-pg     # prints the DSN
    python -m sparkify.pg_cluster stop .local-pg
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from sparkify.errors import SparkifyError

SERVER_USER = "postgres"
DATABASE = "sparkify"


class ClusterError(SparkifyError):
    """The local PostgreSQL cluster could not be created or started."""


def find_bin(program):
    """Path of a PostgreSQL server program: PATH first, then Debian's versioned folders."""
    found = shutil.which(program)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=_version_key)
    if not candidates:
        raise ClusterError(f"{program} not found: install the PostgreSQL server (apt-get install postgresql)")
    return candidates[-1]


def _version_key(path):
    version = Path(path).parts[-3]
    return int(version) if version.isdigit() else 0


def _as_server_user(command):
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _run(command, what):
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ClusterError(f"{what} failed: {detail[-1] if detail else result.returncode}")
    return result


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_dir(data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(data_dir, user.pw_uid, user.pw_gid)
    os.chmod(data_dir, 0o700)


def _init(data_dir):
    _prepare_dir(data_dir)
    _run(
        [
            find_bin("initdb"),
            "-D",
            str(data_dir),
            "-U",
            SERVER_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        f"initdb in {data_dir}",
    )
    settings = {
        "port": _free_port(),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": "''",
        "fsync": "off",  # a throwaway cluster: speed over crash safety
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": 50,
        "shared_buffers": "'256MB'",
        "max_wal_size": "'4GB'",
    }
    config_lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
    _append_config(data_dir, config_lines)


def _append_config(data_dir, lines):
    conf = data_dir / "postgresql.auto.conf"
    with open(conf, "a", encoding="utf-8") as handle:
        handle.write(lines)


def port_of(data_dir):
    for line in (Path(data_dir) / "postgresql.auto.conf").read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "port":
            return int(value.strip().strip("'"))  # ALTER SYSTEM rewrites the file with quotes
    raise ClusterError(f"no port set in {data_dir}/postgresql.auto.conf")


def is_running(data_dir):
    command = [find_bin("pg_ctl"), "status", "-D", str(data_dir)]
    return subprocess.run(_as_server_user(command), capture_output=True).returncode == 0


def dsn_for(data_dir, database=DATABASE):
    return f"host=127.0.0.1 port={port_of(data_dir)} user={SERVER_USER} dbname={database}"


def start(data_dir):
    """Create (first time) and start the cluster; create the database; return its DSN."""
    data_dir = Path(data_dir).resolve()
    if not (data_dir / "PG_VERSION").exists():
        _init(data_dir)
    if not is_running(data_dir):
        _run(
            [
                find_bin("pg_ctl"),
                "start",
                "-D",
                str(data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(data_dir / "server.log"),
            ],
            f"starting PostgreSQL in {data_dir}",
        )
    _create_database(data_dir)
    return dsn_for(data_dir)


def _create_database(data_dir):
    import psycopg2  # imported here so `stop` works before requirements are installed

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg2.connect(dsn_for(data_dir, "postgres"))
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {DATABASE}")
    conn.close()


def stop(data_dir):
    data_dir = Path(data_dir).resolve()
    if (data_dir / "PG_VERSION").exists() and is_running(data_dir):
        _run(
            [find_bin("pg_ctl"), "stop", "-D", str(data_dir), "-m", "fast", "-w"],
            f"stopping PostgreSQL in {data_dir}",
        )


def main(argv=None):
    argv = list(argv or [])
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m sparkify.pg_cluster start|stop DATA_DIR", file=sys.stderr)
        return 2
    try:
        if argv[0] == "start":
            print(start(argv[1]))
        else:
            stop(argv[1])
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
