"""Parallel parsing in worker processes, and large files cut into pieces, load exactly
what the serial loader loads, with the same line numbers in rejects."""

import json

import pytest
from conftest import event, song

from sparkify import staging
from sparkify.jsonfiles import file_pieces, read_piece, read_records

NOV_1 = 1541030400000


@pytest.fixture
def small_tasks(monkeypatch):
    """Tiny tasks and no size threshold, so even test data runs in parallel pieces."""
    monkeypatch.setattr(staging, "TASK_BYTES", 3000)
    monkeypatch.setattr(staging, "TASK_FILES", 7)
    monkeypatch.setattr(staging, "PARALLEL_MIN_BYTES", 0)


def staging_fingerprint(query):
    return {
        table: query(f"SELECT COUNT(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t")[0]
        for table in ("staging_events", "staging_songs", "songplays", "users")
    }


def test_parallel_pieces_load_the_same_rows_as_serial(generated, load, query, monkeypatch, small_tasks):
    load(generated)
    parallel = staging_fingerprint(query)
    monkeypatch.setattr(staging, "PARALLEL_MIN_BYTES", 10**12)  # serial, one task per 3000 bytes
    load(generated)
    assert staging_fingerprint(query) == parallel


def test_rejects_in_later_pieces_keep_their_file_line_numbers(dataset, load, query, small_tasks):
    records = [json.dumps(event(NOV_1 + i, item=i)) for i in range(60)]
    records[47] = '{"broken": '
    data = dataset(
        songs=[song("SO_1")], raw={"log_data/2018/11/2018-11-01-events.json": "\n".join(records).encode()}
    )
    out = load(data, maxerror=5)
    assert query("SELECT line, reason FROM load_rejects") == [
        (48, "malformed JSON: object not closed before the next line")
    ]
    assert "60 records read, 59 loaded, 1 rejected" in out


def test_pieces_are_cut_only_before_a_top_level_object(tmp_path):
    pretty = "\n".join(json.dumps(event(NOV_1 + i, item=i), indent=2) for i in range(40))
    path = tmp_path / "pretty.json"
    path.write_text(pretty)
    pieces = file_pieces(str(path), path.stat().st_size, 1000)
    assert len(pieces) > 5
    assert [end for _, end in pieces[:-1]] == [start for start, _ in pieces[1:]]
    assert pieces[0][0] == 0 and pieces[-1][1] == path.stat().st_size
    per_piece = [list(read_records(str(path), read_piece(str(path), start, end))) for start, end in pieces]
    assert [r.value["itemInSession"] for records in per_piece for r in records] == list(range(40))
    for records in per_piece:  # lines count from the piece's first line, 20 lines per object
        assert [r.line for r in records] == [1 + 20 * i for i in range(len(records))]
