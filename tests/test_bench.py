"""The benchmark code runs end to end at a small size (no timing assertions)."""

import json

import bench


def test_bench_smoke_writes_every_field(dsn, tmp_path, capsys):
    out = tmp_path / "bench.json"
    middle = bench.middle_day(bench.dataset(20000, 2000, 1, tmp_path / "cache"))
    generated = middle.read_bytes()
    code = bench.main(
        [
            "--events",
            "20000",
            "--songs",
            "2000",
            "--row-insert-sample",
            "2000",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--dsn",
            dsn,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    for field in (
        "events",
        "song_files",
        "seconds_total",
        "seconds_by_phase",
        "events_per_second",
        "copy_limit_seconds",
        "stage_vs_copy_limit",
        "speedup_vs_row_inserts",
        "peak_rss_mb",
        "machine",
        "postgres",
        "daily_seconds",
        "nothing_new_seconds",
        "one_song_catalogue_daily_seconds",
        "rematch_etl_seconds",
        "corrected_day_etl_seconds",
        "deleted_day_etl_seconds",
    ):
        assert field in result, field
    assert result["events"] == 20000 and result["song_files"] == 2000
    assert result["rows_after"]["songs"] == 2000 - 2000 // 50  # every 50th file repeats a song_id
    # every play of the songs given an equally long twin with a smaller id moved to it
    assert result["rematch_new_song_files"] == bench.REMATCH_SONGS
    assert result["rematch_plays_moved"] >= bench.REMATCH_SONGS
    assert any("songplays" in line for line in result["rematch_plan"])
    # the corrected day keeps every second event, so about half its plays; the deleted day none
    assert result["corrected_day_events_kept"] == (result["corrected_day_events"] + 1) // 2
    assert 0 < result["corrected_day_plays_after"] < result["corrected_day_plays_before"]
    assert result["deleted_day_options"] == ["--allow-retract"]
    assert result["deleted_day_plays_before"] > 0 and result["deleted_day_plays_after"] == 0
    assert any("retracted" in line for line in result["deleted_day_steps"])
    assert result["corrected_day_phases"]["transform"] is not None
    assert middle.read_bytes() == generated  # the day is put back as it was generated
    assert {"stage staging_events", "stage staging_songs", "transform", "checks"} <= set(
        result["seconds_by_phase"]
    )
    assert result["machine"]["cores"] >= 1
    days = sorted(path.name for path in (tmp_path / "cache").rglob("*-events.json"))
    assert days[-1] == "2018-11-30-events.json"  # the bench's extra day is removed again
    printed = capsys.readouterr().out
    assert "staging / limit" in printed and "speedup vs row INSERTs" in printed
    assert "plays matched again" in printed and "plan of matching plays again:" in printed
    assert "one day corrected" in printed and "one day deleted, whole etl.py --allow-retract" in printed


def test_bench_reuses_the_cached_dataset(tmp_path):
    first = bench.dataset(500, 50, 3, tmp_path)
    marker = first / ".complete"
    stamp = marker.stat().st_mtime_ns
    assert bench.dataset(500, 50, 3, tmp_path) == first
    assert marker.stat().st_mtime_ns == stamp
    assert bench.dataset(500, 50, 4, tmp_path) != first
