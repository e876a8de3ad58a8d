"""The Redshift path end to end: create_tables.py and etl.py with TARGET = redshift, against
the stand-in (tests/redshift_standin.py: a real PostgreSQL at REPEATABLE READ, keys not
enforced, COPY from S3 carried out by test code) and moto's S3 server on 127.0.0.1."""

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import boto3
import psycopg2
import pytest
import redshift_standin
import sqlglot
from sqlglot import exp
from test_sample_pipeline import EXPECTED_COUNTS

import create_tables
import etl
import sql_queries

ROLE = "arn:aws:iam::123456789012:role/sparkifyRedshiftS3Read"
REGION = "us-west-2"
STANDIN = Path(redshift_standin.__file__)


def make_bucket(client, bucket, region=REGION):
    if region != client.meta.region_name:
        client = boto3.client("s3", region_name=region)
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def upload(client, bucket, folder):
    """Every file under folder, at the same relative key."""
    make_bucket(client, bucket)
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, path.relative_to(folder).as_posix())


def write_rs_config(folder, bucket="sparkify-data", staging=True, **settings):
    """A TARGET = redshift config; settings are `SECTION_KEY=value`."""
    values = {
        "ETL": {"TARGET": "redshift", "LOCK_TIMEOUT_SECONDS": "60"},
        "CLUSTER": {
            "HOST": "sparkify.abc123xyz.us-west-2.redshift.amazonaws.com",
            "DB_NAME": "dev",
            "DB_USER": "sparkify",
            "DB_PASSWORD": "Standin-Pw-1",
        },
        "IAM_ROLE": {"ARN": ROLE},
        "S3": {
            "LOG_DATA": f"s3://{bucket}/log_data",
            "SONG_DATA": f"s3://{bucket}/song_data",
            "LOG_JSONPATH": f"s3://{bucket}/log_json_path.json",
            "REGION": REGION,
        },
    }
    if staging:
        values["S3"]["STAGING_PREFIX"] = "s3://sparkify-staging/etl"
    for label, value in settings.items():
        section, key = label.split("_", 1)
        values.setdefault(section, {})[key] = str(value)
    lines = []
    for section, keys in values.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in keys.items()]
    path = Path(folder) / "rs.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def warehouse_on_s3(s3_server, standin, tmp_path, run):
    """warehouse_on_s3(data_dir, **settings) -> config: the data in S3, tables created."""

    def build(data_dir, staging=True, **settings):
        upload(s3_server, "sparkify-data", data_dir)
        if staging:
            make_bucket(s3_server, "sparkify-staging")
        config = write_rs_config(tmp_path, staging=staging, **settings)
        code, out = run(create_tables, "--config", config)
        assert code == 0, out
        return config

    return build


def fingerprint(dsn):
    """Every star table's rows, sorted: equal fingerprints mean identical tables."""
    conn = psycopg2.connect(dsn)
    tables = {}
    with conn.cursor() as cur:
        for table in ("songplays", "users", "songs", "artists", "time"):
            cur.execute(f"SELECT * FROM {table}")
            tables[table] = sorted(cur.fetchall(), key=repr)
    conn.close()
    return tables


def counts(query, tables=EXPECTED_COUNTS):
    return {table: query(f"SELECT COUNT(*) FROM {table}")[0][0] for table in tables}


STAR_COUNTS = {table: rows for table, rows in EXPECTED_COUNTS.items() if not table.startswith("staging_")}
NO_STAGED_ROWS = {"staging_events": 0, "staging_songs": 0}


def events_loaded(out):
    """The events the run staged, from its staging_events line (a Redshift run stages into
    temporary tables of its own, gone with its session)."""
    line = next(line for line in out.splitlines() if line.startswith("staging_events "))
    return int(re.search(r"(\d+) loaded", line).group(1))


# --- The real sample and generated data -----------------------------------------------------------


def test_real_sample_loads_with_its_counts(real_sample, warehouse_on_s3, run, query):
    config = warehouse_on_s3(real_sample)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert counts(query, STAR_COUNTS) == STAR_COUNTS
    assert counts(query, NO_STAGED_ROWS) == NO_STAGED_ROWS  # staged in the run's temporary tables
    assert "staging_songs   71 files in 1 COPY, 71 records read, 71 loaded, 0 rejected" in out
    assert "staging_events  30 files in 30 COPY, 8056 records read, 8056 loaded, 0 rejected" in out
    assert query("SELECT level, COUNT(*) FROM users GROUP BY level ORDER BY level") == [
        ("free", 75),
        ("paid", 22),
    ]


def test_redshift_path_builds_the_same_star_as_the_local_path(
    generated, warehouse_on_s3, run, load, dsn, server_dsn, tmp_path
):
    """Mojibake repair is local only; without it both paths hold the same rows."""
    config = warehouse_on_s3(generated)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    on_redshift = fingerprint(dsn)
    conn = psycopg2.connect(server_dsn)
    conn.autocommit = True
    local_db = f"local_{os.getpid()}_{int(time.time() * 1000)}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {local_db}")
    try:
        from conftest import write_config

        local_dsn = f"{server_dsn} dbname={local_db}"
        (tmp_path / "local").mkdir()
        local_config = write_config(tmp_path / "local", local_dsn, generated, repair_mojibake="false")
        assert run(create_tables, "--config", local_config)[0] == 0
        code, out = run(etl, "--config", local_config)
        assert code == 0, out
        assert fingerprint(local_dsn) == on_redshift
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE {local_db} WITH (FORCE)")
        conn.close()


@pytest.mark.parametrize("staging", [True, False])
def test_a_rerun_adds_nothing(staging, generated, warehouse_on_s3, run, dsn):
    """With STAGING_PREFIX the ledger leaves nothing to stage, so the run skips the
    transform; without it a COPY reads the whole prefix again and the merge adds nothing."""
    config = warehouse_on_s3(generated, staging=staging)
    assert run(etl, "--config", config)[0] == 0
    first = fingerprint(dsn)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert fingerprint(dsn) == first
    assert ("nothing new to load" in out) == staging
    assert ("checks: " in out) != staging


# --- One run at a time -------------------------------------------------------------------------------


def run_in_process(dsn, script, *args):
    """A script in a process of its own against the stand-in."""
    return subprocess.Popen(
        [sys.executable, str(STANDIN), dsn, script, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=STANDIN.parent.parent,
    )


def test_concurrent_runs_wait_for_each_other_and_never_duplicate(generated, warehouse_on_s3, dsn, query):
    """Both runs start while the lock is held, so both wait at LOCK. Each must take its
    snapshot only after it holds the lock; else the second inserts the first one's plays
    again (keys are not enforced) and its own checks cannot see them."""
    config = warehouse_on_s3(generated)
    holder = psycopg2.connect(dsn)
    with holder.cursor() as cur:
        cur.execute("LOCK etl_run_lock")
    runs = [run_in_process(dsn, "etl", "--config", config) for _ in range(2)]
    deadline = time.time() + 30
    while time.time() < deadline and query("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")[0][0] < 2:
        time.sleep(0.1)
    holder.rollback()
    holder.close()
    outputs = [process.communicate(timeout=120)[0] for process in runs]
    codes = [process.returncode for process in runs]
    for out in outputs:
        assert "Traceback" not in out and "1023" not in out and "could not serialize" not in out.lower(), out
    assert codes.count(0) >= 1, outputs
    for code, out in zip(codes, outputs, strict=True):
        assert code == 0 or "another run is loading this warehouse" in out, out
    duplicated = query(
        "SELECT COUNT(*) FROM (SELECT songplay_id FROM songplays GROUP BY 1 HAVING COUNT(*) > 1) AS d"
    )
    assert duplicated == [(0,)]
    assert query("SELECT COUNT(*) - COUNT(DISTINCT user_id) FROM users") == [(0,)]
    assert query("SELECT COUNT(*) - COUNT(DISTINCT start_time) FROM time") == [(0,)]


def test_a_second_run_gives_up_after_the_lock_timeout(generated, warehouse_on_s3, run, dsn, tmp_path):
    config = warehouse_on_s3(generated, ETL_LOCK_TIMEOUT_SECONDS=1)
    holder = psycopg2.connect(dsn)
    with holder.cursor() as cur:
        cur.execute("LOCK etl_run_lock")
    try:
        code, out = run(etl, "--config", config)
    finally:
        holder.close()
    assert code == 1
    assert "error: another run is loading this warehouse; waited 1 s" in out
    assert "Traceback" not in out


# --- Load errors --------------------------------------------------------------------------------------


@pytest.fixture
def day_with_bad_rows(dataset):
    """One day of five plays; line 2 has sessionId 'abc', line 4 a userId too large."""
    from conftest import event, song

    events = [event(1541105830796 + i * 1000, user="7", session=3, item=i) for i in range(5)]
    events[1]["sessionId"] = "abc"
    events[3]["userId"] = "99999999999"
    return dataset(songs=[song("SO1")], days={"2018-11-05": events})


def test_a_failed_copy_names_file_line_and_column_and_changes_nothing(
    day_with_bad_rows, generated, warehouse_on_s3, run, s3_server, dsn, query
):
    config = warehouse_on_s3(generated)
    assert run(etl, "--config", config)[0] == 0
    before = fingerprint(dsn)
    bad_key = "log_data/2018/11/2018-11-05-events.json"
    s3_server.upload_file(str(day_with_bad_rows / bad_key), "sparkify-data", bad_key)
    code, out = run(etl, "--config", config)
    assert code == 1
    assert "error: COPY into staging_events failed: Load into table 'staging_events' failed." in out
    assert "nothing was committed" in out
    assert f"s3://sparkify-data/{bad_key} line 2, column session_id: error 1207 Invalid digit" in out
    assert "(value 'abc')" in out
    assert "Traceback" not in out
    assert fingerprint(dsn) == before
    assert query("SELECT dataset, file, line FROM load_rejects") == [
        ("log_data", f"s3://sparkify-data/{bad_key}", 2)
    ]


def test_serverless_reads_the_documented_load_error_view(day_with_bad_rows, warehouse_on_s3, run):
    config = warehouse_on_s3(day_with_bad_rows, CLUSTER_SERVERLESS="true")
    code, out = run(etl, "--config", config)
    assert code == 1
    assert "2018-11-05-events.json line 2, column session_id: error 1207 Invalid digit" in out
    assert "(value" not in out  # sys_load_error_detail keeps no value


def test_the_copy_error_still_shows_when_the_load_errors_cannot_be_read(
    day_with_bad_rows, warehouse_on_s3, run, query
):
    config = warehouse_on_s3(day_with_bad_rows)
    query("ALTER TABLE stl_load_errors RENAME TO stl_load_errors_gone")
    code, out = run(etl, "--config", config)
    assert code == 1
    assert "error: COPY into staging_events failed: Load into table 'staging_events' failed." in out
    assert "reading the load errors failed" in out
    assert "Traceback" not in out


def test_maxerror_skips_bad_rows_and_records_them_with_the_bad_user_id(
    day_with_bad_rows, warehouse_on_s3, run, query
):
    config = warehouse_on_s3(day_with_bad_rows, ETL_MAXERROR=2)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert query("SELECT COUNT(*) FROM songplays") == [(3,)]
    assert "staging_events  1 files in 1 COPY, 5 records read, 3 loaded, 2 rejected" in out
    rejects = query("SELECT dataset, file, line, reason, raw_value FROM load_rejects ORDER BY line")
    assert rejects[0][:3] == ("log_data", "s3://sparkify-data/log_data/2018/11/2018-11-05-events.json", 2)
    assert "column session_id: error 1207" in rejects[0][3]
    assert rejects[1][1:3] == ("s3://sparkify-data/log_data/2018/11/2018-11-05-events.json", None)
    assert rejects[1][4] == "99999999999"
    assert "userId '99999999999' is not a whole number from 0 to 2147483647" in rejects[1][3]
    assert "rejected s3://sparkify-data/log_data/2018/11/2018-11-05-events.json:2: column session_id" in out


def test_maxerror_is_the_total_for_the_run(day_with_bad_rows, warehouse_on_s3, run, query):
    """Each COPY skips at most MAXERROR rows; the run counts them with the bad userIds."""
    config = warehouse_on_s3(day_with_bad_rows, ETL_MAXERROR=1)
    code, out = run(etl, "--config", config)
    assert code == 1
    assert "2 records rejected, more than [ETL] MAXERROR = 1; nothing was committed" in out
    assert query("SELECT COUNT(*) FROM songplays") == [(0,)]
    assert query("SELECT COUNT(*) FROM load_rejects") == [(2,)]


@pytest.mark.parametrize("user_id", ["99999999999", "1" * 40, "39.5", "abc", "-3", "12\nx", "ö" * 20])
def test_a_bad_user_id_is_rejected_not_fatal(user_id, dataset, warehouse_on_s3, run, query):
    from conftest import event, song

    events = [event(1541105830796, user="39", item=0), event(1541105831796, user=user_id, item=1)]
    config = warehouse_on_s3(dataset(songs=[song("SO1")], days={"2018-11-05": events}), ETL_MAXERROR=1)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert query("SELECT user_id FROM users") == [(39,)]
    stored = user_id.encode()[:32].decode("utf-8", "ignore")  # TRUNCATECOLUMNS counts bytes
    assert query("SELECT COUNT(*) FROM load_rejects WHERE raw_value = %s", (stored,)) == [(1,)]


def test_users_are_one_per_integer_whatever_the_leading_zeros(dataset, warehouse_on_s3, run, query):
    from conftest import event, song

    events = [
        event(1541105830796, user="039", item=0, level="free"),
        event(1541105831796, user="39", item=1, level="paid"),
    ]
    config = warehouse_on_s3(dataset(songs=[song("SO1")], days={"2018-11-05": events}))
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert query("SELECT user_id, level FROM users") == [(39, "paid")]


# --- Checks Redshift cannot shortcut ------------------------------------------------------------------


@pytest.mark.parametrize(
    "table, duplicate, check",
    [
        ("users", "INSERT INTO users SELECT * FROM users LIMIT 1", "users has one row per (user_id)"),
        ("songs", "INSERT INTO songs SELECT * FROM songs LIMIT 1", "songs has one row per (song_id)"),
        (
            "songplays",
            "INSERT INTO songplays SELECT * FROM songplays LIMIT 1",
            "songplays has one row per (songplay_id)",
        ),
        ("time", "INSERT INTO time SELECT * FROM time LIMIT 1", "time has one row per (start_time)"),
    ],
)
def test_a_duplicated_key_is_caught_by_the_checks(
    table, duplicate, check, generated, warehouse_on_s3, run, query
):
    config = warehouse_on_s3(generated)
    assert run(etl, "--config", config)[0] == 0
    query(duplicate)
    code, out = run(etl, "--config", config, "--check-only")
    assert code == 1
    assert f"check failed: {check}: expected 0, found 1" in out


# --- Exactly the data files -------------------------------------------------------------------------


def stray_objects(client):
    for key, body in {
        "log_data_old/2018/11/2018-11-01-events.json": b'{"page": "NextSong"}',
        "log_data/2018/11/2018-11-05-events.json.bak": b"not json",
        "log_data/README.txt": b"notes",
    }.items():
        client.put_object(Bucket="sparkify-data", Key=key, Body=body)


def test_stray_objects_beside_the_logs_are_not_loaded(generated, warehouse_on_s3, run, s3_server):
    config = warehouse_on_s3(generated)
    stray_objects(s3_server)
    code, out = run(etl, "--config", config, "--from", "2018-11-05", "--to", "2018-11-05")
    assert code == 0, out
    assert "objects ignored (not .json or .json.gz): 2018-11-05-events.json.bak, README.txt" in out
    in_file = sum(
        1 for line in (generated / "log_data/2018/11/2018-11-05-events.json").open() if line.strip()
    )
    assert events_loaded(out) == in_file
    assert (
        s3_server.list_objects_v2(Bucket="sparkify-staging").get("KeyCount", 0) == 0
    )  # the run's manifests removed


def test_without_a_staging_prefix_stray_objects_are_refused(generated, warehouse_on_s3, run, s3_server):
    config = warehouse_on_s3(generated, staging=False)
    stray_objects(s3_server)
    code, out = run(etl, "--config", config, "--from", "2018-11-05", "--to", "2018-11-05")
    assert code == 2
    assert "log_data/2018/11/2018-11-05-events.json is also the start of" in out
    assert "log_data/2018/11/2018-11-05-events.json.bak" in out
    assert "STAGING_PREFIX" in out


def test_without_a_staging_prefix_the_folder_is_copied_as_a_prefix_ending_in_slash(
    generated, warehouse_on_s3, run, s3_server
):
    config = warehouse_on_s3(generated, staging=False)
    s3_server.put_object(
        Bucket="sparkify-data", Key="log_data_old/2018/11/2018-11-01-events.json", Body=b"{}"
    )
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert events_loaded(out) == sample_data_events(generated)


def sample_data_events(folder):
    return sum(1 for path in Path(folder, "log_data").rglob("*.json") for line in path.open() if line.strip())


def test_gzip_logs_are_copied_with_gzip(dataset, warehouse_on_s3, run, query):
    import gzip

    from conftest import event, song

    plain = "\n".join(json.dumps(event(1541105830796 + i, item=i)) for i in range(3))
    packed = gzip.compress("\n".join(json.dumps(event(1541205830796 + i, item=i)) for i in range(2)).encode())
    folder = dataset(
        songs=[song("SO1")],
        raw={
            "log_data/2018/11/2018-11-01-events.json": plain.encode(),
            "log_data/2018/11/2018-11-02-events.json.gz": packed,
        },
    )
    config = warehouse_on_s3(folder)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert "staging_events  2 files in 2 COPY, 5 records read, 5 loaded, 0 rejected" in out
    assert query("SELECT COUNT(*) FROM songplays") == [(5,)]


def test_packed_songs_load_the_same_rows(generated, warehouse_on_s3, run, dsn):
    config = warehouse_on_s3(generated)
    assert run(etl, "--config", config)[0] == 0
    direct = fingerprint(dsn)
    text = Path(config).read_text().replace("[S3]\n", "[S3]\nPACK_SONGS = true\n")
    Path(config).write_text(text)
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert "packed 300 song objects into 1 gzip files" in out
    assert fingerprint(dsn) == direct


# --- Regions, owners, config ----------------------------------------------------------------------


def test_a_staging_bucket_in_another_region_is_refused(generated, s3_server, standin, tmp_path, run):
    upload(s3_server, "sparkify-data", generated)
    make_bucket(s3_server, "sparkify-staging", region="eu-west-1")
    config = write_rs_config(tmp_path)
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert code == 2
    assert "s3://sparkify-staging/etl is in eu-west-1, but [S3] REGION is us-west-2" in out


def test_tables_owned_by_another_user_are_refused_up_front(generated, warehouse_on_s3, run, query):
    config = warehouse_on_s3(generated)
    query("DO $$ BEGIN CREATE ROLE someone_else; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    query("ALTER TABLE songs OWNER TO someone_else")
    try:
        code, out = run(etl, "--config", config)
        assert code == 2
        assert "these tables belong to another user: songs (owner someone_else)" in out
    finally:
        query("ALTER TABLE songs OWNER TO CURRENT_USER")


def test_a_missing_bucket_is_one_line(s3_server, standin, tmp_path, run):
    config = write_rs_config(tmp_path, bucket="no-such-bucket", staging=False)
    code, out = run(etl, "--config", config)
    assert code == 1
    assert "error: listing s3://no-such-bucket/song_data: An error occurred (NoSuchBucket)" in out
    assert "Traceback" not in out


def test_dry_run_locks_first_resets_the_timeout_and_names_manifests(
    generated, s3_server, tmp_path, run, monkeypatch
):
    from sparkify import warehouse

    monkeypatch.setattr(warehouse, "_open", lambda config: pytest.fail("--dry-run connected"))
    upload(s3_server, "sparkify-data", generated)
    make_bucket(s3_server, "sparkify-staging")
    code, out = run(etl, "--config", write_rs_config(tmp_path), "--dry-run")
    assert code == 0, out
    statements = [block.split("\n", 1) for block in out.strip().split("\n\n")]
    lock_at = next(i for i, (what, _) in enumerate(statements) if what == "-- take the run lock")
    assert [sql for _, sql in statements[lock_at : lock_at + 3]] == [
        "SET statement_timeout TO 60000;",
        "LOCK etl_run_lock;",
        "RESET statement_timeout;",
    ]
    assert all("CREATE TABLE" not in sql for _, sql in statements[lock_at:])
    assert "MANIFEST" in out and "s3://sparkify-staging/etl/runs/<run_id>/log_data-00000.manifest" in out
    assert "ORDER BY songplay_id" not in out


def test_create_tables_locks_first_after_creating_the_lock_table_on_its_own(tmp_path, run):
    code, out = run(create_tables, "--config", write_rs_config(tmp_path), "--dry-run")
    assert code == 0, out
    blocks = [block.split("\n", 1)[1] for block in out.strip().split("\n\n")]
    create_lock = blocks.index(sql_after("CREATE TABLE IF NOT EXISTS etl_run_lock"))
    assert blocks[create_lock + 1] == "COMMIT;"
    assert blocks[create_lock + 2 : create_lock + 5] == [
        "SET statement_timeout TO 60000;",
        "LOCK etl_run_lock;",
        "RESET statement_timeout;",
    ]
    assert "PRIMARY KEY" not in out


def sql_after(prefix):
    import sql_queries

    assert sql_queries.RUN_LOCK_TABLE_CREATE.startswith(prefix)
    return sql_queries.RUN_LOCK_TABLE_CREATE + ";"


def test_log_jsonpath_auto_is_refused(tmp_path, run):
    config = write_rs_config(tmp_path, S3_LOG_JSONPATH="auto")
    code, out = run(etl, "--config", config)
    assert code == 2
    assert "[S3] LOG_JSONPATH cannot be 'auto'" in out


def test_bad_user_ids_stream_in_pages_of_at_most_a_thousand(
    dataset, warehouse_on_s3, run, query, monkeypatch
):
    """More bad userIds than one FETCH may bring on a single-node cluster (fetch.html: at
    most 1000): every one is rejected once, through the documented DECLARE/FETCH/CLOSE."""
    from conftest import event, song

    bad = 2345
    events = [event(1541105830796, user="39", item=0)]
    events += [event(1541105830796 + i, user=f"x{i}", item=i) for i in range(1, bad + 1)]
    config = warehouse_on_s3(dataset(songs=[song("SO1")], days={"2018-11-05": events}), ETL_MAXERROR=bad)
    sent = record_statements(monkeypatch)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert query("SELECT COUNT(*), COUNT(DISTINCT raw_value) FROM load_rejects") == [(bad, bad)]
    assert query("SELECT user_id FROM users") == [(39,)]
    fetches = [sql for sql in sent if sql.startswith("FETCH")]
    assert fetches == ["FETCH FORWARD 1000 FROM invalid_user_id_events"] * 3
    assert sum(sql.startswith("DECLARE invalid_user_id_events CURSOR FOR") for sql in sent) == 1
    assert "CLOSE invalid_user_id_events" in sent


# --- What a run reads and writes on Redshift (issue #20) ---------------------------------------


def standin_session(dsn):
    """A connection of the scripts' kind to the stand-in (its writes go through its rules)."""
    conn = redshift_standin.connect(dsn)
    conn.initialize(logging.getLogger("sparkify"))
    return conn


def record_statements(monkeypatch):
    """Every statement the scripts send to the stand-in from now on, as text, in order."""
    sent = []
    execute = redshift_standin.StandInCursor.execute

    def recording(cursor, sql, params=None):
        sent.append(sql.decode() if isinstance(sql, bytes) else str(sql))
        return execute(cursor, sql, params)

    monkeypatch.setattr(redshift_standin.StandInCursor, "execute", recording)
    return sent


@pytest.mark.parametrize("standin", ["repeatable read", "serializable"], indirect=True)
def test_a_run_that_fails_meanwhile_does_not_stop_the_run_holding_the_lock(
    standin, generated, warehouse_on_s3, run, dsn, query, tmp_path, monkeypatch
):
    """Mid-transform, while this run holds the lock, another run gives up waiting for it
    and records its failure in etl_runs, and a failed run's rejects reach load_rejects:
    both written outside the lock. At SERIALIZABLE (older provisioned clusters) Redshift
    stops a transaction that read a table, then writes it after another transaction
    committed a write to it (error 1023; the stand-in adds that rule). The run reads
    neither table in its transaction, and commits."""
    config = warehouse_on_s3(generated)
    (tmp_path / "impatient").mkdir()
    impatient = write_rs_config(tmp_path / "impatient", ETL_LOCK_TIMEOUT_SECONDS=1)
    meanwhile = []
    execute = redshift_standin.StandInCursor.execute

    def failing_runs_meanwhile(cursor, sql, params=None):
        if str(sql).lstrip().startswith("INSERT INTO time") and not meanwhile:
            meanwhile.append(run_in_process(dsn, "etl", "--config", impatient).communicate(timeout=120)[0])
            failed_run = standin_session(dsn)  # as etl.save_rejects writes, after a rollback
            with failed_run, failed_run.cursor() as cur:
                cur.execute(
                    "INSERT INTO load_rejects (run_id, rejected_at, dataset, file, line, reason, raw_value)"
                    " VALUES ('another-run', '2026-11-30', 'log_data', 'x.json', 1, 'malformed JSON', NULL)"
                )
            failed_run.close()
        return execute(cursor, sql, params)

    monkeypatch.setattr(redshift_standin.StandInCursor, "execute", failing_runs_meanwhile)
    code, out = run(etl, "--config", config)
    assert "error: another run is loading this warehouse; waited 1 s" in meanwhile[0]
    assert code == 0, out
    assert query("SELECT status, COUNT(*) FROM etl_runs GROUP BY status ORDER BY status") == [
        ("committed", 1),
        ("failed", 1),
    ]
    assert query("SELECT COUNT(*) FROM songplays")[0][0] > 0


def test_the_stand_in_at_serializable_stops_a_run_that_read_a_table_written_since(dsn, query):
    """The stand-in's rule itself: a transaction that read etl_runs, then inserts into it
    after another transaction committed an insert, fails with Redshift's 1023; one that
    did not read it commits."""
    redshift_standin.prepare_database(dsn, "serializable")
    query(sql_queries.create_table_sql(sql_queries.ETL_RUNS, sql_queries.POSTGRES))
    row = "INSERT INTO etl_runs (run_id, started_at, finished_at, status, target, full_refresh)"
    row += " VALUES (%s, GETDATE(), GETDATE(), %s, 'redshift', FALSE)"
    outcomes = []
    for reads_first in (False, True):
        long_run, other = standin_session(dsn), standin_session(dsn)
        try:
            with long_run.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_class LIMIT 1")  # the snapshot
                if reads_first:
                    cur.execute("SELECT run_id FROM etl_runs LIMIT 0")
                with other.cursor() as other_cur:
                    other_cur.execute(row, (f"other {reads_first}", "failed"))
                other.commit()
                try:
                    cur.execute(row, (f"long {reads_first}", "committed"))
                    long_run.commit()
                    outcomes.append("committed")
                except psycopg2.Error as error:
                    outcomes.append(str(error).splitlines()[0])
        finally:
            long_run.close()
            other.close()
    assert outcomes[0] == "committed"
    assert outcomes[1].startswith("1023 DETAIL: Serializable isolation violation on table - etl_runs")


def test_a_run_stages_into_temporary_tables_of_its_own(generated, warehouse_on_s3, run, query, monkeypatch):
    """No TRUNCATE (it commits) and no DELETE of a whole staging table (its rows would stay
    on disk until Redshift's automatic VACUUM DELETE): each run COPYs into temporary
    tables LIKE the permanent ones, which are gone with its session."""
    config = warehouse_on_s3(generated)
    sent = record_statements(monkeypatch)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    for table in sql_queries.STAGING_TABLES:
        assert sent.count(f"CREATE TEMP TABLE {table.name} (LIKE {table.name})") == 1
    whole_table_deletes = [sql for sql in sent if re.fullmatch(r"\s*DELETE\s+FROM\s+\w+\s*", sql, re.I)]
    assert whole_table_deletes == []
    assert events_loaded(out) == sample_data_events(generated)
    assert counts(query, NO_STAGED_ROWS) == NO_STAGED_ROWS
    assert query("SELECT COUNT(*) FROM songplays")[0][0] > 0


def joins_by_songplay_id(sql):
    """(joins of songplays to another relation by songplay_id, those of them not also on
    start_time) in one statement: equalities of two songplay_id columns, one of them
    songplays', in a conjunction that also holds (or lacks) the equality of the two
    relations' start_time; and songplay_id IN (subquery), which joins on it alone."""
    tree = sqlglot.parse_one(re.sub(r"%(\(\w+\))?s", "'2018-11-05'", sql), read="redshift")
    songplays = {table.alias_or_name for table in tree.find_all(exp.Table) if table.name == "songplays"}
    joins, alone = 0, 0
    for condition in tree.find_all(exp.In):
        if isinstance(condition.this, exp.Column) and condition.this.name == "songplay_id":
            joins, alone = joins + 1, alone + 1
    for equality in tree.find_all(exp.EQ):
        pair = (equality.left, equality.right)
        if not all(isinstance(side, exp.Column) and side.name == "songplay_id" for side in pair):
            continue
        relations = {side.table for side in pair}
        if not relations & songplays:
            continue
        joins += 1
        conjunction = equality
        while isinstance(conjunction.parent, (exp.And, exp.Paren)):
            conjunction = conjunction.parent
        same_time = [
            other
            for other in conjunction.find_all(exp.EQ)
            if {other.left.table, other.right.table} == relations
            and all(isinstance(side, exp.Column) for side in (other.left, other.right))
            and other.left.name == other.right.name == "start_time"
        ]
        alone += not same_time
    return joins, alone


def test_every_join_of_songplays_to_this_runs_plays_is_on_start_time_too():
    """songplays is distributed on start_time: joined to a per-run set by songplay_id alone,
    Redshift would redistribute or broadcast the fact (c_data_redistribution.html)."""
    engine = sql_queries.REDSHIFT
    statements = [step.sql for step in sql_queries.transform_plan(engine)]
    statements += [sql for _, sql, _ in sql_queries.quality_checks(sql_queries.THIS_RUN)]
    found = [(sql, *joins_by_songplay_id(sql)) for sql in statements]
    assert sum(joins for _, joins, _ in found) >= 3  # new plays, the rematch, the duplicate check
    assert [" ".join(sql.split()) for sql, _, alone in found if alone] == []
    # and it sees a join on songplay_id alone, in both forms
    assert joins_by_songplay_id("SELECT 1 FROM songplays AS sp JOIN n ON sp.songplay_id = n.songplay_id") == (
        (1, 1)
    )
    assert joins_by_songplay_id("DELETE FROM songplays WHERE songplay_id IN (SELECT songplay_id FROM n)") == (
        (1, 1)
    )


def reads_outside_the_plays_window(sql):
    """songplays and time where a statement reads them (not where it writes them) without
    restricting their start_time to the run's plays window (BETWEEN the two parameters)."""
    tree = sqlglot.parse_one(re.sub(r"%(\(\w+\))?s", "'2018-11-05'", sql), read="redshift")
    unrestricted = []
    for table in tree.find_all(exp.Table):
        select = table.find_ancestor(exp.Select)
        if table.name not in ("songplays", "time") or select is None:
            continue  # another table, or the table an INSERT writes
        limit = select.args.get("limit")
        if limit is not None and limit.expression.name == "0":
            continue  # LIMIT 0 reads no row
        where = select.args.get("where")
        windows = where.find_all(exp.Between) if where else []
        if not any(
            isinstance(window.this, exp.Column)
            and window.this.name == "start_time"
            and window.this.table in ("", table.alias_or_name)
            for window in windows
        ):
            unrestricted.append(table.alias_or_name)
    return unrestricted


def test_a_daily_run_reads_songplays_and_time_only_within_its_plays_window():
    """Both are sorted on start_time: a WHERE on it lets Redshift skip the blocks outside
    the window ("Without this, the query execution engine must scan participating columns
    entirely", c_designing-queries-best-practices.html). Matching plays again, which runs
    only when a song changed, reads the fact's titles whole."""
    daily_conditions = (None, sql_queries.NO_SONG_CHANGED)
    daily = [
        step.sql for step in sql_queries.transform_plan(sql_queries.REDSHIFT) if step.when in daily_conditions
    ]
    daily += [sql for _, sql, _ in sql_queries.quality_checks(sql_queries.THIS_RUN)]
    assert sum("songplays" in sql or "time" in sql for sql in daily) >= 8
    unrestricted = {" ".join(sql.split()): reads_outside_the_plays_window(sql) for sql in daily}
    assert {sql: tables for sql, tables in unrestricted.items() if tables} == {}
    assert reads_outside_the_plays_window("SELECT COUNT(*) FROM songplays WHERE user_id = 1") == ["songplays"]
    assert reads_outside_the_plays_window(sql_queries.REMATCHED_PLAYS_CREATE) == ["sp"]


def put_json(client, key, records):
    client.put_object(Bucket="sparkify-data", Key=key, Body="\n".join(map(json.dumps, records)).encode())


REMATCH_STATEMENTS = (sql_queries.REMATCHED_PLAYS_CREATE, sql_queries.SONGPLAYS_REMATCH)


def test_plays_are_matched_again_only_when_a_song_changed(
    dataset, warehouse_on_s3, run, s3_server, query, monkeypatch
):
    """A run that stages no song file sends no statement of the catalogue, and one whose
    song files change no song sends none that matches plays again: a daily run does not
    read the fact's titles."""
    from conftest import event, song

    plays = [event(1541030400000 + i * 1000, item=i, song="Song", artist="Artist") for i in range(5)]
    songs = [song("SO5", title="Song", duration=300.0)]
    config = warehouse_on_s3(dataset(songs=songs, days={"2018-11-01": plays}))
    sent = record_statements(monkeypatch)
    assert run(etl, "--config", config)[0] == 0
    assert all(sql in sent for sql in REMATCH_STATEMENTS)  # the first songs change the catalogue

    sent.clear()
    next_day = [event(1541116800000, song="Song", artist="Artist")]
    put_json(s3_server, "log_data/2018/11/2018-11-02-events.json", next_day)
    assert run(etl, "--config", config)[0] == 0
    assert not any(sql in sent for sql in REMATCH_STATEMENTS + (sql_queries.SONG_CHANGES_CREATE,))
    assert sql_queries.REMATCHED_PLAYS_NONE in sent

    sent.clear()
    put_json(s3_server, "song_data/TRSAME.json", [song("SO5", title="Song", duration=300.0)])  # a copy
    assert run(etl, "--config", config)[0] == 0
    assert sql_queries.SONG_CHANGES_CREATE in sent
    assert not any(sql in sent for sql in REMATCH_STATEMENTS)

    sent.clear()
    put_json(s3_server, "song_data/TRBETTER.json", [song("SO9", title="Song", duration=200.0)])
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert all(sql in sent for sql in REMATCH_STATEMENTS)
    assert "songplays       6 plays matched again" in out
    assert query("SELECT DISTINCT song_id FROM songplays") == [("SO9",)]


def test_no_decision_rests_on_a_row_count_redshift_may_not_report(
    dataset, warehouse_on_s3, run, s3_server, query, monkeypatch
):
    """Redshift documents no row count for CREATE TABLE AS, INSERT, UPDATE or DELETE, and
    psycopg2 then says -1. With every count -1: plays are matched again when a better song
    arrives, and the checks' scope follows the rows each run added."""
    from conftest import event, song

    monkeypatch.setattr(redshift_standin.StandInCursor, "rowcount", property(lambda cursor: -1))
    plays = [event(1541030400000 + i * 1000, item=i, song="Song", artist="Artist") for i in range(30)]
    songs = [song("SO50", title="Song", duration=300.0)]
    songs += [song(f"SO{i:02d}", title=f"T{i}") for i in range(20)]
    config = warehouse_on_s3(dataset(songs=songs, days={"2018-11-01": plays}))
    code, out = run(etl, "--config", config)
    assert code == 0 and "(whole tables)" in out, out  # a first load
    put_json(s3_server, "song_data/TRBETTER.json", [song("SO90", title="Song", duration=200.0)])
    code, out = run(etl, "--config", config)
    assert code == 0 and "(this run)" in out, out  # one song of 22
    assert query("SELECT DISTINCT song_id FROM songplays") == [("SO90",)]
