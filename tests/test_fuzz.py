"""Random bytes and random JSON never crash the loader, and every record is either
loaded or rejected: loaded + rejected = read."""

import json
import tempfile
from pathlib import Path

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sample_data
import sql_queries
from sparkify.copytext import ChunkStream
from sparkify.jsonfiles import BOM, Record, _ObjectReader, read_records, read_whole
from sparkify.staging import BadValue, Counters, RowConverter, staging_columns

EVENT_COLUMNS = staging_columns(
    sql_queries.STAGING_EVENTS, [(f"$['{f}']", (f,)) for f in sample_data.JSONPATHS]
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
event_like = st.fixed_dictionaries(
    {},
    optional={field: json_values for field in sample_data.JSONPATHS},
)
# Mostly loadable events whose text fields hold anything: tabs, backslashes, newlines,
# NULs, surrogates, very long strings. This is what COPY's text format must survive.
TEXT_FIELDS = [
    "artist",
    "auth",
    "firstName",
    "gender",
    "lastName",
    "level",
    "location",
    "method",
    "page",
    "song",
    "userAgent",
]
loadable_event = st.fixed_dictionaries(
    {
        "ts": st.integers(0, 2**42),
        "sessionId": st.integers(-(2**31), 2**31 - 1),
        "itemInSession": st.integers(0, 10_000),
    },
    optional={
        **{field: st.text(max_size=600) | json_values for field in TEXT_FIELDS},
        "length": st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
        "userId": st.integers(0, 10**6).map(str) | st.just(""),
    },
)


def convert_file(path):
    """(read, loaded lines, rejected) for one file, as the loader counts them."""
    counters = Counters()
    convert = RowConverter(EVENT_COLUMNS, repair=True, counters=counters)
    read, loaded, rejected = 0, [], 0
    for item in read_records(path):
        read += 1
        if isinstance(item, Record):
            try:
                loaded.append(convert(item.value))
            except BadValue:
                rejected += 1
        else:
            rejected += 1
    return read, loaded, rejected


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(content=st.binary(max_size=400))
def test_random_bytes_never_crash_and_every_record_is_counted(content, tmp_path):
    path = tmp_path / "random.json"
    path.write_bytes(content)
    read, loaded, rejected = convert_file(path)
    assert read == len(loaded) + rejected


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(records=st.lists(event_like, max_size=6), pretty=st.booleans())
def test_every_json_object_is_one_record(records, pretty, tmp_path):
    path = tmp_path / "objects.json"
    path.write_text("\n".join(json.dumps(r, indent=2 if pretty else None) for r in records))
    read, loaded, rejected = convert_file(path)
    assert read == len(records) == len(loaded) + rejected


json_text_pieces = st.lists(
    st.one_of(
        event_like.map(json.dumps),
        event_like.map(lambda r: json.dumps(r, indent=2)),
        st.sampled_from(["", " ", "\ufeff", "\r", "{", "}", "[1]", '{"a": 1}{"b": 2}', '{"x": "\\u00e9"}']),
        st.text(max_size=20),
    ),
    max_size=6,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(pieces=json_text_pieces, separator=st.sampled_from(["\n", "\r\n", " "]), junk=st.binary(max_size=20))
def test_a_whole_file_read_at_once_gives_the_same_records(pieces, separator, junk, tmp_path):
    # The loader reads plain files in one go and parses whole lines (and one-object
    # files) on a fast path; it must find exactly what the general reader finds.
    path = tmp_path / "mixed.json"
    path.write_bytes(separator.join(pieces).encode("utf-8", "surrogatepass") + junk)
    expected = general_path_records(path)
    assert list(read_records(path)) == expected
    assert list(read_records(path, read_whole(path))) == expected


def general_path_records(path):
    """What read_records yields without its fast paths: every line through the reader."""
    reader, found = _ObjectReader(), []
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            found += reader.feed(raw[len(BOM) :] if line_no == 1 and raw.startswith(BOM) else raw, line_no)
    return found + list(reader.finish())


@pytest.fixture(scope="module")
def staging_db(server_dsn):
    """One database with the staging tables for all examples (each rolls back)."""
    import uuid

    name = f"fuzz_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server_dsn)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    conn = psycopg2.connect(f"{server_dsn} dbname={name}")
    with conn.cursor() as cur:
        cur.execute(sql_queries.create_table_sql(sql_queries.STAGING_EVENTS, sql_queries.POSTGRES))
    conn.commit()
    yield conn
    conn.close()
    admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


def test_postgres_accepts_every_line_the_loader_produces(staging_db, tmp_path):
    loaded_per_example = []

    @settings(max_examples=150, deadline=None)
    @given(records=st.lists(loadable_event | event_like, min_size=1, max_size=5), junk=st.binary(max_size=60))
    def every_line_loads(records, junk):
        path = tmp_path / "mixed.json"
        path.write_bytes("\n".join(json.dumps(r) for r in records).encode() + b"\n" + junk)
        read, loaded, rejected = convert_file(path)
        assert read == len(loaded) + rejected
        with staging_db.cursor() as cur:
            table = sql_queries.STAGING_EVENTS  # the loader's columns: all but source_file
            copy_sql = sql_queries.copy_from_stdin_sql(table._replace(columns=table.copied_columns))
            cur.copy_expert(copy_sql, ChunkStream(iter(["".join(loaded).encode()])))
            cur.execute("SELECT COUNT(*) FROM staging_events")
            assert cur.fetchone()[0] == len(loaded)
        staging_db.rollback()
        loaded_per_example.append(len(loaded))

    every_line_loads()
    # the examples loaded rows, not only rejects
    assert sum(loaded_per_example) > 50


@settings(max_examples=400, deadline=None)
@given(record=st.one_of(loadable_event, event_like))
def test_fast_paths_give_the_same_text_as_the_general_path(record):
    fast = RowConverter(EVENT_COLUMNS, repair=True, counters=Counters())
    general = RowConverter(EVENT_COLUMNS, repair=True, counters=Counters())
    try:
        expected = "\t".join(general._cell(record, column) for column in EVENT_COLUMNS) + "\n"
    except BadValue as error:
        with pytest.raises(BadValue) as raised:
            fast(record)
        assert str(raised.value) == str(error)
        return
    assert fast(record) == expected


# --- The whole pipeline on PostgreSQL, with integers well past INTEGER -------------------------

INTEGER_RANGE = (-(2**31), 2**31 - 1)
any_integer = st.integers(-(2**63), 2**63) | st.integers(INTEGER_RANGE[0] - 2, INTEGER_RANGE[1] + 2)
pipeline_event = st.fixed_dictionaries(
    {
        "ts": st.integers(1_500_000_000_000, 1_600_000_000_000),
        "sessionId": any_integer,
        "itemInSession": any_integer,
        "status": any_integer,
        "userId": any_integer.map(str) | st.just(""),
        "page": st.sampled_from(["NextSong", "NextSong", "Home"]),
        "song": st.sampled_from(["Yellow", "Fix You"]),
        "artist": st.just("Coldplay"),
        "length": st.floats(0, 500),
        "level": st.sampled_from(["free", "paid"]),
    }
)
pipeline_song = st.fixed_dictionaries(
    {
        "num_songs": any_integer,
        "year": any_integer,
        "song_id": st.sampled_from(["SO1", "SO2", "SO3"]),
        "artist_id": st.sampled_from(["AR1", "AR2"]),
        "artist_name": st.just("Coldplay"),
        "title": st.sampled_from(["Yellow", "Fix You"]),
        "duration": st.floats(0, 500),
    }
)


def in_integer_range(value):
    return INTEGER_RANGE[0] <= value <= INTEGER_RANGE[1]


def event_is_loadable(event):
    user = event["userId"]
    user_ok = user == "" or (user.isdigit() and int(user) <= INTEGER_RANGE[1])
    return user_ok and all(in_integer_range(event[f]) for f in ("sessionId", "itemInSession", "status"))


def song_is_loadable(song):
    return in_integer_range(song["num_songs"]) and in_integer_range(song["year"])


def test_the_whole_pipeline_loads_or_reports_every_record(dsn, tmp_path):
    """Staging, transform and checks on PostgreSQL: whatever the integers, the run
    commits, every record is loaded or in load_rejects with its file, line and reason,
    and the plays are exactly the loadable NextSong events with a user."""
    from conftest import write_config

    import create_tables
    import etl

    examples = []

    @settings(max_examples=25, deadline=None)
    @given(events=st.lists(pipeline_event, min_size=1, max_size=8), songs=st.lists(pipeline_song, max_size=4))
    def loaded_or_reported(events, songs):
        data = Path(tempfile.mkdtemp(dir=tmp_path))
        (data / "song_data").mkdir(parents=True)
        (data / "log_data").mkdir()
        for index, song in enumerate(songs):
            (data / "song_data" / f"TR{index}.json").write_text(json.dumps(song))
        (data / "log_data" / "2018-11-01-events.json").write_text("\n".join(map(json.dumps, events)))
        paths = {"jsonpaths": [f"$['{field}']" for field in sample_data.JSONPATHS]}
        (data / "log_json_path.json").write_text(json.dumps(paths))
        config = str(write_config(data, dsn, data, maxerror=1000))
        assert create_tables.main(["--config", config, "--quiet"]) == 0
        assert etl.main(["--config", config, "--quiet"]) == 0

        loadable = [e for e in events if event_is_loadable(e)]
        plays = {
            (int(e["userId"]), e["sessionId"], e["itemInSession"], e["ts"])
            for e in loadable
            if e["page"] == "NextSong" and e["userId"]
        }
        rejected = len(events) - len(loadable) + sum(not song_is_loadable(s) for s in songs)
        conn = psycopg2.connect(dsn)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM songplays")
            assert cur.fetchone()[0] == len(plays)
            cur.execute("SELECT file, line, reason FROM load_rejects")
            rejects = cur.fetchall()
            cur.execute("SELECT records_read, records_loaded, records_rejected FROM etl_runs")
            read, loaded, rejected_in_run = cur.fetchone()
            cur.execute("DELETE FROM etl_runs")
        conn.commit()
        conn.close()
        assert len(rejects) == rejected == rejected_in_run
        assert read == len(events) + len(songs) == loaded + rejected
        # each names its file, line and field
        assert all(file and line and reason.startswith("field ") for file, line, reason in rejects), rejects
        examples.append(rejected)

    loaded_or_reported()
    assert sum(examples) > 0 and any(rejected == 0 for rejected in examples)
