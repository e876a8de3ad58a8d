"""Dirty input: every record is loaded or rejected with file, line and reason."""

import gzip
import json

import pytest
from conftest import event, song

import create_tables
import etl
import sample_data

NOV_1 = 1541030400000
LOG_FILE = "log_data/2018/11/2018-11-01-events.json"
# One good play in a file of its own, so the star tables are never empty and the
# quality checks pass whatever the file under test holds. Its session is 999.
BASELINE_FILE = "log_data/2018/10/2018-10-31-events.json"
BASELINE = json.dumps(event(NOV_1 - 86_400_000, user="99", session=999)).encode()
MINE = " WHERE session_id IS DISTINCT FROM 999"


ONE_SONG = (song("SO_1"),)


def with_fields(record, fields):
    return {**record, **fields}


def lines(*records):
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records).encode()


@pytest.fixture
def load_raw(dataset, run, config_for, query):
    """load_raw(log_bytes, files={path: bytes}, **etl_settings) -> (exit code, output)."""

    def invoke(log_bytes=None, files=None, songs=ONE_SONG, **settings):
        raw = {BASELINE_FILE: BASELINE, **(files or {})}
        if log_bytes is not None:
            raw[LOG_FILE] = log_bytes
        data = dataset(songs=songs, raw=raw)
        config = config_for(data, **{"maxerror": 1000, **settings})
        assert run(create_tables, "--config", config)[0] == 0
        return run(etl, "--config", config)

    return invoke


def rejects(query):
    return query("SELECT file, line, reason FROM load_rejects ORDER BY file, line")


def test_malformed_line_is_rejected_and_the_rest_loaded(load_raw, query):
    code, out = load_raw(lines(event(NOV_1), '{"artist": "x", "ts": }', event(NOV_1 + 1, item=1)))
    assert code == 0
    assert "4 records read, 3 loaded, 1 rejected" in out
    assert rejects(query) == [
        ("log_data/2018/11/2018-11-01-events.json", 2, "malformed JSON: Expecting value (column 23)")
    ]
    assert f"rejected {LOG_FILE}:2: malformed JSON" in out


def test_truncated_last_line_is_rejected(load_raw, query):
    code, out = load_raw(lines(event(NOV_1)) + b'\n{"artist": "Cut off", "auth": "Logg')
    assert code == 0
    assert [(line, reason.split(":")[0]) for _, line, reason in rejects(query)] == [(2, "malformed JSON")]


def test_unclosed_object_at_end_of_file_is_rejected(load_raw, query):
    code, _ = load_raw(lines(event(NOV_1)) + b'\n{"artist": "Cut off",\n"auth": "x",')
    assert code == 0
    assert [r[1:] for r in rejects(query)] == [(2, "truncated: JSON object not closed at end of file")]


@pytest.mark.parametrize(
    "text, kind",
    [("[1, 2]", "an array"), ('"just text"', "a string"), ("42", "a number"), ("null", "null")],
)
def test_non_object_json_is_rejected(text, kind, load_raw, query):
    code, _ = load_raw(lines(text, event(NOV_1)))
    assert code == 0
    assert [r[1:] for r in rejects(query)] == [(1, f"expected a JSON object, found {kind}")]
    assert query("SELECT COUNT(*) FROM staging_events" + MINE) == [(1,)]


@pytest.mark.parametrize(
    "fields, column, loaded",
    [
        ({"ts": str(NOV_1 + 796)}, "ts::text", "2018-11-01 00:00:00.796"),
        ({"ts": float(NOV_1)}, "ts::text", "2018-11-01 00:00:00"),
        ({"userId": 39}, "user_id", "39"),
        ({"userId": "039"}, "user_id", "39"),
        ({"length": "246.30812"}, "length", 246.30812),
        ({"length": 246}, "length", 246.0),
        ({"sessionId": 7.0}, "session_id", 7),
        ({"sessionId": "7"}, "session_id", 7),
        ({"itemInSession": "3"}, "item_in_session", 3),
        ({"status": 200.0}, "status", 200),
        ({"artist": 112}, "artist", "112"),
        ({"artist": True}, "artist", "true"),
        ({"artist": ""}, "artist", None),
        ({"artist": "   "}, "artist", None),
        ({"userId": ""}, "user_id", None),
        ({"registration": None}, "registration", None),
        ({"artist": {"name": "x"}}, "artist", '{"name":"x"}'),
    ],
)
def test_unambiguous_values_are_coerced(fields, column, loaded, load_raw, query):
    code, out = load_raw(lines(with_fields(event(NOV_1), fields)))
    assert code == 0, out
    assert rejects(query) == []
    assert query(f"SELECT {column} FROM staging_events" + MINE) == [(loaded,)]


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"ts": "yesterday"}, "field $['ts']: 'yesterday' is not a whole number"),
        ({"ts": 1.5e12 + 0.5}, "field $['ts']: 1500000000000.5 is not a whole number"),
        ({"ts": None}, "field $['ts'] is missing or empty, and is required"),
        ({"ts": 10**20}, "field $['ts']: 100000000000000000000 is out of range for epoch milliseconds"),
        ({"userId": "abc"}, "field $['userId']: 'abc' is not a whole number written in digits"),
        ({"userId": 39.0}, "field $['userId']: 39.0 is not a whole number written in digits"),
        ({"userId": " 39"}, "field $['userId']: ' 39' is not a whole number written in digits"),
        ({"userId": -3}, "field $['userId']: -3 is out of range (0 to 2147483647)"),
        ({"userId": "99999999999"}, "field $['userId']: '99999999999' is out of range (0 to 2147483647)"),
        ({"userId": 2**31}, "field $['userId']: 2147483648 is out of range (0 to 2147483647)"),
        ({"userId": "1" * 40}, "field $['userId']: '" + "1" * 40 + "' is out of range (0 to 2147483647)"),
        ({"length": "long"}, "field $['length']: 'long' is not a number"),
        ({"length": [1]}, "field $['length']: is an array, not a number"),
        ({"sessionId": 7.5}, "field $['sessionId']: 7.5 is not a whole number"),
        ({"sessionId": True}, "field $['sessionId']: is a boolean, not a whole number"),
        ({"sessionId": 2**40}, "field $['sessionId']: 1099511627776 is out of range for an INTEGER"),
        ({"itemInSession": None}, "field $['itemInSession'] is missing or empty, and is required"),
    ],
)
def test_ambiguous_values_are_rejected_with_the_field(fields, reason, load_raw, query):
    code, _ = load_raw(lines(event(NOV_1 + 1, item=1), with_fields(event(NOV_1), fields)))
    assert code == 0
    assert [r[1:] for r in rejects(query)] == [(2, reason)]


def test_missing_fields_load_as_null_and_extra_fields_are_ignored(load_raw, query):
    record = {"ts": NOV_1, "sessionId": 1, "itemInSession": 0, "page": "Home", "favouriteColour": "blue"}
    code, _ = load_raw(lines(record))
    assert code == 0 and rejects(query) == []
    assert query("SELECT artist, user_id, page FROM staging_events" + MINE) == [(None, None, "Home")]


def test_long_strings_are_truncated_to_the_column_bytes_and_counted(load_raw, query):
    code, out = load_raw(lines(event(NOV_1, location="ö" * 400)))
    assert code == 0
    assert query("SELECT octet_length(location), length(location) FROM staging_events" + MINE) == [(512, 256)]
    assert "1 text values truncated to the column width" in out


def test_nul_characters_are_removed_and_counted(load_raw, query):
    code, out = load_raw(lines(event(NOV_1, song="No\u0000Doubt")))
    assert code == 0
    assert query("SELECT song FROM staging_events" + MINE) == [("NoDoubt",)]
    assert "1 text values with NUL characters removed" in out


def test_what_redshift_would_load_differently_is_counted_by_kind(load_raw):
    code, out = load_raw(
        lines(
            event(NOV_1, sessionId=7.0, song="No\u0000Doubt"),
            event(NOV_1 + 1, itemInSession="3.0", artist="Bj\u00c3\u00b6rk"),
        )
    )
    assert code == 0, out
    assert "2 whole numbers written with a decimal point (7.0); not documented to load on Redshift" in out
    assert "1 text values with NUL characters removed; Redshift's COPY reads NUL as a record's end" in out
    assert "1 text values repaired (double-encoded UTF-8); Redshift loads them as they are" in out


def test_a_jsonpaths_file_redshift_would_refuse_is_named(dataset, load):
    folder = dataset(songs=[song("SO1")], days={"2018-11-01": [event(NOV_1)]})
    paths = [
        f"$.{field}" if index == 0 else f"$['{field}']" for index, field in enumerate(sample_data.JSONPATHS)
    ]
    (folder / "log_json_path.json").write_text(json.dumps({"jsonpaths": paths}))
    out = load(folder)
    assert "the JSONPaths file mixes bracket and dot notation; Redshift refuses it" in out


def test_raw_nul_byte_in_a_line_is_rejected(load_raw, query):
    code, _ = load_raw(lines(event(NOV_1)) + b'\n{"artist": "a\x00b"}')
    assert code == 0
    assert [r[1] for r in rejects(query)] == [2]


def test_bom_and_crlf_are_accepted(load_raw, query):
    data = b"\xef\xbb\xbf" + lines(event(NOV_1), event(NOV_1 + 1, item=1)).replace(b"\n", b"\r\n")
    code, _ = load_raw(data)
    assert code == 0 and rejects(query) == []
    assert query("SELECT COUNT(*) FROM staging_events" + MINE) == [(2,)]


def test_invalid_utf8_line_is_rejected(load_raw, query):
    code, _ = load_raw(lines(event(NOV_1)) + b'\n{"artist": "Bj\xf6rk"}\n' + lines(event(NOV_1 + 1, item=1)))
    assert code == 0
    assert [r[1:] for r in rejects(query)] == [(2, "invalid UTF-8 at byte 14 of the line")]
    assert query("SELECT COUNT(*) FROM staging_events" + MINE) == [(2,)]


def test_lone_surrogate_is_rejected(load_raw, query):
    code, _ = load_raw(
        lines('{"artist": "\\ud800", "ts": 1541030400000, "sessionId": 1, "itemInSession": 0}')
    )
    assert code == 0
    assert "lone surrogate" in rejects(query)[0][2]


def test_gzip_files_are_read(load_raw, query):
    code, out = load_raw(
        files={"log_data/2018/11/2018-11-01-events.json.gz": gzip.compress(lines(event(NOV_1)))}
    )
    assert code == 0
    assert query("SELECT COUNT(*) FROM staging_events" + MINE) == [(1,)]


def test_corrupt_gzip_is_reported_not_crashed(load_raw, query):
    broken = gzip.compress(lines(*[event(NOV_1 + i, item=i) for i in range(200)]))[:-30]
    code, out = load_raw(files={"log_data/2018/11/2018-11-01-events.json.gz": broken})
    assert code == 0, out
    assert any("file cannot be read past this point" in r[2] for r in rejects(query))


def test_empty_files_and_other_extensions_are_said(load_raw, query):
    code, out = load_raw(
        lines(event(NOV_1)),
        files={
            "log_data/2018/11/2018-11-02-events.json": b"",
            "log_data/notes.txt": b"hello",
            "log_data/.DS_Store": b"\x00",
        },
    )
    assert code == 0
    assert "1 files held no records" in out
    assert "2 files ignored (not .json or .json.gz): .DS_Store, notes.txt" in out


def test_song_files_with_numeric_artist_and_several_pretty_printed_objects(load_raw, query):
    two_songs = (
        json.dumps(song("SO_A", artist=112), indent=2) + "\n" + json.dumps(song("SO_B"), indent=2)
    ).encode()
    code, out = load_raw(lines(event(NOV_1)), songs=(), files={"song_data/A/TRX.json": two_songs})
    assert code == 0, out
    assert query("SELECT song_id, artist_name FROM staging_songs ORDER BY 1") == [
        ("SO_A", "112"),
        ("SO_B", "Artist"),
    ]
    assert "staging_songs   1 files, 2 records read, 2 loaded, 0 rejected" in out


def test_more_rejects_than_maxerror_commits_nothing_but_keeps_the_rejects(load_raw, query):
    code, out = load_raw(lines(event(NOV_1), "not json", "[]"), maxerror=1)
    assert code == 1
    assert "error: 2 records rejected, more than [ETL] MAXERROR = 1; nothing was committed" in out
    assert query("SELECT COUNT(*) FROM songplays") == [(0,)]
    assert query("SELECT COUNT(*) FROM staging_events") == [(0,)]
    assert [r[1] for r in rejects(query)] == [2, 3]


def test_rejects_within_maxerror_are_loaded_around(load_raw, query):
    code, out = load_raw(lines(event(NOV_1), "not json"), maxerror=1)
    assert code == 0
    assert query("SELECT COUNT(*) FROM songplays") == [(2,)]
    assert "1 rejected records saved in load_rejects" in out


def test_default_maxerror_is_zero(dataset, run, config_for):
    data = dataset(songs=[song("SO_1")], raw={LOG_FILE: lines(event(NOV_1), "oops")})
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert code == 1 and "more than [ETL] MAXERROR = 0" in out


def test_mojibake_repair_can_be_switched_off(load_raw, query):
    mangled = "Bj\u00c3\u0083\u00c2\u00b6rk"
    code, out = load_raw(lines(event(NOV_1, artist=mangled)), repair_mojibake="false")
    assert code == 0
    assert query("SELECT artist FROM staging_events" + MINE) == [(mangled,)]
    assert "repaired" not in out


@pytest.mark.parametrize(
    "text, repaired",
    [
        ("Bj\u00c3\u0083\u00c2\u00b6rk", "Björk"),  # twice, as in the real logs
        ("Bj\u00c3\u00b6rk", "Björk"),  # once
        ("Björk", "Björk"),  # already right
        ("Clementina Santafè", "Clementina Santafè"),  # Latin-1 text that is not UTF-8
        ("Beyoncé ❤", "Beyoncé ❤"),  # characters beyond Latin-1: left alone
        ("plain", "plain"),
    ],
)
def test_mojibake_repair_only_where_unambiguous(text, repaired):
    from sparkify.staging import repair_mojibake

    assert repair_mojibake(text) == repaired


def test_rejects_fit_their_columns_in_bytes():
    """load_rejects holds VARCHAR(1024), counted in bytes on Redshift."""
    from sparkify.copytext import copy_text_cells
    from sparkify.rejects import RejectSink

    sink = RejectSink("run1", "2018-11-01 00:00:00")
    sink.add("log_data", "ö" * 600, None, "é" * 700, "x")
    sink.spool.flush()
    sink.spool.seek(0)
    (row,) = [copy_text_cells(line) for line in sink.spool]
    assert [len(cell.encode()) for cell in (row[3], row[5])] == [1024, 1024]
    sink.close()


def test_the_first_ten_rejects_are_printed_and_all_are_kept(load_raw, query):
    code, out = load_raw(lines(*[f"not json {n}" for n in range(12)], event(NOV_1)))
    assert code == 0, out
    printed = [line for line in out.splitlines() if line.startswith("rejected ")]
    assert printed == [
        f"rejected {LOG_FILE}:{n}: malformed JSON: Expecting value (column 1)" for n in range(1, 11)
    ]
    assert query("SELECT COUNT(*) FROM load_rejects") == [(12,)]
    assert "12 rejected records saved in load_rejects" in out
