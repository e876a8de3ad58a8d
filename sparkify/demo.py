"""`make demo`: the whole pipeline on a local PostgreSQL, from nothing.

Generates sample data (or uses --data), starts a throwaway PostgreSQL cluster in
.local-pg unless SPARKIFY_LOCAL_DSN names a server, writes .demo/dwh.cfg, then runs
create_tables.py and etl.py with it.

example:
  python -m sparkify.demo
  python -m sparkify.demo --data ../shared/data/sparkify-sample
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import create_tables  # noqa: E402
import etl  # noqa: E402
import sample_data  # noqa: E402
from sparkify import pg_cluster  # noqa: E402
from sparkify.errors import SparkifyError, UsageError  # noqa: E402

DEMO_DIR = ROOT / ".demo"
CLUSTER_DIR = ROOT / ".local-pg"


def demo_config(dsn, data_dir):
    return (
        "# Written by `make demo`. Copy dwh.cfg.example for your own settings.\n"
        "[ETL]\nTARGET = local\n\n"
        f"[LOCAL]\nDSN = {dsn}\n\n"
        "[S3]\n"
        f"LOG_DATA = {data_dir / 'log_data'}\n"
        f"SONG_DATA = {data_dir / 'song_data'}\n"
        f"LOG_JSONPATH = {data_dir / 'log_json_path.json'}\n"
    )


def prepare(data=None):
    """Data, a PostgreSQL server and .demo/dwh.cfg for them; returns the config path.

    data: a folder laid out like the sample, or None to generate sample data once.
    """
    if data:
        data_dir = Path(data).resolve()
        if not (data_dir / "log_data").is_dir() or not (data_dir / "song_data").is_dir():
            raise UsageError(f"{data_dir} has no log_data/ and song_data/ folders")
    else:
        data_dir = DEMO_DIR / "data"
        if not (data_dir / ".complete").exists():
            sample_data.generate(data_dir, events=20_000, songs=2_000, seed=42)
            (data_dir / ".complete").write_text("ok")
            print(f"generated 20000 events and 2000 song files in {data_dir}")
    dsn = os.environ.get("SPARKIFY_LOCAL_DSN") or pg_cluster.start(CLUSTER_DIR)
    DEMO_DIR.mkdir(exist_ok=True)
    config = DEMO_DIR / "dwh.cfg"
    config.write_text(demo_config(dsn, data_dir))
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a folder laid out like the sample (default: generate)")
    args = parser.parse_args(argv)
    try:
        config = prepare(args.data)
    except SparkifyError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"config: {config}")
    code = create_tables.main(["--config", str(config)])
    return code or etl.main(["--config", str(config)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
