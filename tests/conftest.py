"""Fixtures: a real PostgreSQL server (started here unless SPARKIFY_TEST_DSN is set),
a fresh database per test, config files in tmp_path, generated and real sample data."""

import logging
import os
import shutil
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

import boto3
import psycopg2
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import etl  # noqa: E402
import sample_data  # noqa: E402
import sql_queries  # noqa: E402
from sparkify import pg_cluster  # noqa: E402

SAMPLE_PATH_VARIABLE = "SPARKIFY_SAMPLE_DIR"


def real_sample_dir():
    """The real Udacity sample: $SPARKIFY_SAMPLE_DIR, or shared/data/sparkify-sample
    beside the project or beside a folder above it (a clone may sit deeper)."""
    given = os.environ.get(SAMPLE_PATH_VARIABLE)
    if given:
        return Path(given)
    beside = [parent / "shared" / "data" / "sparkify-sample" for parent in ROOT.parents]
    return next((path for path in beside if path.is_dir()), beside[0])


REAL_SAMPLE = real_sample_dir()

# Folders and files of the user's that the tests must never write (#14): a test that
# did would break the user's `make demo` afterwards.
DEMO_FOLDER = ROOT / ".demo"  # every file, by size and modification time
BENCH_FOLDERS = (ROOT / ".bench", ROOT / ".bench" / "data")  # by name only
# What the test tools themselves keep beside the project (git-ignored caches).
TOOL_CACHES = {".hypothesis", ".pytest_cache", "__pycache__", ".ruff_cache"}


def user_files():
    """What the user's own folders hold: the project's top level, .bench and
    .bench/data by name (their clusters and datasets change on their own), and every
    file of .demo (config and generated data) by size and modification time."""
    listing = {"top level": sorted(p.name for p in ROOT.iterdir() if p.name not in TOOL_CACHES)}
    for folder in BENCH_FOLDERS:
        listing[str(folder)] = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None
    listing[str(DEMO_FOLDER)] = {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in DEMO_FOLDER.rglob("*") if p.is_file()
    }
    return listing


@pytest.fixture(scope="session", autouse=True)
def users_folders_left_alone():
    before = user_files()
    yield
    after = user_files()
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"the tests wrote into the user's folders: {changed}"


@pytest.fixture(scope="session")
def server_dsn():
    """DSN of a PostgreSQL server we may create databases on."""
    given = os.environ.get("SPARKIFY_TEST_DSN")
    if given:
        make_default_roles(given)
        yield given
        return
    data_dir = Path(tempfile.mkdtemp(prefix="sparkify-test-pg-"))
    try:
        pg_cluster.start(data_dir)
        make_default_roles(pg_cluster.dsn_for(data_dir, "postgres"))
        yield pg_cluster.dsn_for(data_dir, "postgres")
    finally:
        pg_cluster.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


ANALYSTS = "sparkify_analysts"  # [ROLES]' defaults, which every test config leaves alone
OPERATORS = "sparkify_operators"


def make_default_roles(server_dsn):
    """The roles create_tables.py grants to by default, on the whole server (PostgreSQL's
    roles belong to the cluster, not to one database); tests/test_roles.py makes users."""
    conn = _admin(server_dsn)
    with conn.cursor() as cur:
        cur.execute(sql_queries.EXISTING_ROLES_SQL["pg"], ((ANALYSTS, OPERATORS),))
        present = {name for (name,) in cur.fetchall()}
        for role in {ANALYSTS, OPERATORS} - present:
            cur.execute(sql_queries.create_role_sql(role))
    conn.close()


def _admin(server_dsn):
    conn = psycopg2.connect(server_dsn)
    conn.autocommit = True
    return conn


@pytest.fixture
def dsn(server_dsn):
    """A new, empty database for one test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    conn = _admin(server_dsn)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    yield f"{server_dsn} dbname={name}"
    conn = _admin(server_dsn)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


@pytest.fixture
def query(dsn):
    """query(sql, params) -> list of rows, on the test's database."""

    def run(sql, params=None):
        conn = psycopg2.connect(dsn)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()

    return run


def write_config(folder, dsn, data_dir, **settings):
    """A local-target dwh.cfg for data laid out like the sample; settings go to [ETL]."""
    data_dir = Path(data_dir)
    lines = ["[ETL]", "TARGET = local"]
    lines += [f"{key.upper()} = {value}" for key, value in settings.items()]
    lines += [
        "[LOCAL]",
        f"DSN = {dsn}",
        "[S3]",
        f"LOG_DATA = {data_dir / 'log_data'}",
        f"SONG_DATA = {data_dir / 'song_data'}",
        f"LOG_JSONPATH = {data_dir / 'log_json_path.json'}",
    ]
    path = Path(folder) / "dwh.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def config_for(tmp_path, dsn):
    """config_for(data_dir, **etl_settings) -> path of a config for this test's database."""
    return lambda data_dir, **settings: write_config(tmp_path, dsn, data_dir, **settings)


@pytest.fixture
def run(capsys):
    """run(script_module, *args) -> (exit code, everything printed), in-process."""

    def invoke(module, *args):
        code = module.main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return invoke


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """A small generated dataset, shared read-only by the tests."""
    return sample_data.generate(tmp_path_factory.mktemp("generated"), events=3000, songs=300, seed=7)


@pytest.fixture(scope="session")
def real_sample():
    """The real sample; missing, it skips the test on a developer's machine, and fails it
    in CI (CI set), naming the folder."""
    if not REAL_SAMPLE.is_dir():
        message = f"the real Sparkify sample is not at {REAL_SAMPLE} (set {SAMPLE_PATH_VARIABLE})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return REAL_SAMPLE


@pytest.fixture
def load(run, config_for):
    """load(data_dir, *etl_args, **etl_settings): create tables and run etl; returns output."""
    import create_tables

    def invoke(data_dir, *args, **settings):
        config = config_for(data_dir, **settings)
        code, out = run(create_tables, "--config", config)
        assert code == 0, out
        code, out = run(etl, "--config", config, *args)
        assert code == 0, out
        return out

    return invoke


def event(ts, user="1", session=1, item=0, page="NextSong", **fields):
    """One eventsim log record with sensible defaults; fields override by JSON name."""
    record = {
        "artist": "Artist",
        "auth": "Logged In",
        "firstName": "Ann",
        "gender": "F",
        "itemInSession": item,
        "lastName": "Lee",
        "length": 200.0,
        "level": "free",
        "location": "Town, ST",
        "method": "PUT",
        "page": page,
        "registration": 1.5e12,
        "sessionId": session,
        "song": "Song",
        "status": 200,
        "ts": ts,
        "userAgent": "Agent",
        "userId": user,
    }
    record.update(fields)
    return record


def song(song_id, title="Song", artist="Artist", duration=200.0, artist_id="AR1", **fields):
    record = {
        "num_songs": 1,
        "artist_id": artist_id,
        "artist_latitude": None,
        "artist_longitude": None,
        "artist_location": "",
        "artist_name": artist,
        "song_id": song_id,
        "title": title,
        "duration": duration,
        "year": 2000,
    }
    record.update(fields)
    return record


@pytest.fixture
def dataset(tmp_path):
    """dataset(songs=[...], days={"2018-11-01": [events]}, raw={relpath: bytes}) -> folder."""
    import json

    def build(songs=(), days=None, raw=None, name="data"):
        root = tmp_path / name
        (root / "song_data").mkdir(parents=True, exist_ok=True)
        (root / "log_data").mkdir(parents=True, exist_ok=True)
        for index, record in enumerate(songs):
            (root / "song_data" / f"TR{index:04d}.json").write_text(json.dumps(record))
        for day, events in (days or {}).items():
            folder = root / "log_data" / day[:4] / day[5:7]
            folder.mkdir(parents=True, exist_ok=True)
            lines = "\n".join(json.dumps(e) for e in events)
            (folder / f"{day}-events.json").write_text(lines)
        for relative, content in (raw or {}).items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        paths = {"jsonpaths": [f"$['{f}']" for f in sample_data.JSONPATHS]}
        (root / "log_json_path.json").write_text(json.dumps(paths))
        return root

    return build


@pytest.fixture
def s3(monkeypatch):
    """An S3 client on moto's in-memory S3 (no network)."""
    import boto3
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("s3", region_name="us-west-2")


# --- The Redshift path: moto's S3 server and the PostgreSQL stand-in (tests/redshift_standin.py)


S3_REGION = "us-west-2"


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_server(moto_endpoint, monkeypatch):
    """A client of moto's S3 server, emptied for each test; the scripts reach it too."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": S3_REGION,
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"))
    return boto3.client("s3", region_name=S3_REGION)


# The node modes a module's Redshift-path tests run in (tests/redshift_gate.py: a single-node
# cluster FETCHes at most 1000 rows, fetch.html). Elsewhere single-node, the strictest:
# running every such test in both modes would cost minutes.
STANDIN_NODE_MODES = {
    "test_redshift_path": ("single-node", "multi-node"),
    "test_redshift_gate": ("single-node", "multi-node"),
}


def pytest_generate_tests(metafunc):
    chosen = any("node_mode" in mark.args[0] for mark in metafunc.definition.iter_markers("parametrize"))
    if "node_mode" in metafunc.fixturenames and not chosen:
        modes = STANDIN_NODE_MODES.get(metafunc.module.__name__, ("single-node",))
        metafunc.parametrize("node_mode", modes, indirect=True)


@pytest.fixture
def node_mode(request):
    """The stand-in's node mode, "single-node" or "multi-node" (STANDIN_NODE_MODES)."""
    return request.param


# A statement Redshift's guide does not document fails the test (tests/redshift_gate.py),
# even one the code caught and only logged (redshift_standin.REFUSED).
@pytest.fixture
def standin(dsn, monkeypatch, request, node_mode):
    """The test's database as a Redshift stand-in; the scripts connect to it. At
    REPEATABLE READ, or at the isolation a test gives it by indirect parametrization
    (`@pytest.mark.parametrize("standin", ["serializable"], indirect=True)`)."""
    import redshift_standin

    redshift_standin.prepare_database(dsn, getattr(request, "param", "repeatable read"))
    redshift_standin.install(dsn, monkeypatch.setattr, node_mode)
    redshift_standin.REFUSED.clear()
    yield dsn
    refused = [f"{sql.strip()[:300]}\n  {problems}" for sql, problems in redshift_standin.REFUSED]
    assert not refused, "the Redshift path sent what Redshift does not document:\n" + "\n".join(refused)
