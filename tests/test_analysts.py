"""The analysts' side: named queries, their formats, the notebook, dry runs, progress."""

import csv
import io
import json
from decimal import Decimal

import pytest
from test_redshift_sql import redshift_problems

import analytics
import create_tables
import etl
import sql_queries


@pytest.fixture
def loaded_sample(real_sample, load, config_for):
    load(real_sample)
    return config_for(real_sample)


def test_every_query_answers_on_the_real_sample(loaded_sample, run):
    code, out = run(analytics, "--config", loaded_sample)
    assert code == 0, out
    for name, query in analytics.QUERIES.items():
        assert query.title in out
        columns, rows = analytics.answer(name, loaded_sample)
        assert columns and rows, f"{name} answered nothing"


def test_list_names_every_query_with_its_title(run):
    code, out = run(analytics, "--list")
    assert code == 0, out
    for name, query in analytics.QUERIES.items():
        assert any(name in line and query.title in line for line in out.splitlines()), name


def test_plays_by_hour_and_weekday_sum_to_all_plays(loaded_sample):
    for name in ("plays_by_hour", "plays_by_weekday", "plays_by_day"):
        columns, rows = analytics.answer(name, loaded_sample)
        assert sum(row[-1] for row in rows) == 6820, name
    columns, rows = analytics.answer("plays_by_hour", loaded_sample)
    assert columns == ["hour", "plays"] and [row[0] for row in rows] == list(range(24))


def test_paid_vs_free_counts_plays_and_current_users(loaded_sample):
    columns, rows = analytics.answer("paid_vs_free", loaded_sample)
    by_level = {row[0]: dict(zip(columns, row, strict=True)) for row in rows}
    assert by_level["free"]["users_now"] == 75 and by_level["paid"]["users_now"] == 22
    assert by_level["free"]["plays"] + by_level["paid"]["plays"] == 6820


def test_top_songs_count_every_play_by_what_was_played(loaded_sample):
    """Counted from the log itself: You're The One by Dwight Yoakam is played 37 times,
    none matched to the catalogue; the only matched play of the sample is Setanta matins."""
    columns, rows = analytics.answer("top_songs", loaded_sample)
    assert columns == ["title", "artist", "plays", "matched_plays"]
    assert rows[:3] == [
        ("You're The One", "Dwight Yoakam", 37, 0),
        ("Undo", "Björk", 28, 0),
        ("Revelry", "Kings Of Leon", 27, 0),
    ]


def test_top_artists_count_every_play_and_say_how_many_are_matched(loaded_sample, query):
    columns, rows = analytics.answer("top_artists", loaded_sample)
    assert columns == ["artist", "plays", "matched_plays"]
    assert rows[:2] == [("Coldplay", 58, 0), ("Kings Of Leon", 55, 0)]
    assert query("SELECT COUNT(*) FROM songplays WHERE artist_name = 'Elena' AND artist_id IS NOT NULL") == [
        (1,)
    ]


def test_distributions_get_a_text_bar_chart(loaded_sample, run):
    code, out = run(analytics, "--config", loaded_sample, "plays_by_hour")
    assert code == 0
    peak_line = next(line for line in out.splitlines() if line.strip().startswith("16 "))
    assert peak_line.endswith("#" * analytics.BAR_WIDTH)  # hour 16 has the most plays


@pytest.mark.parametrize("output_format", ["csv", "json", "markdown"])
def test_export_formats(output_format, loaded_sample, run):
    code, out = run(analytics, "--config", loaded_sample, "plays_by_weekday", "--format", output_format)
    assert code == 0
    if output_format == "csv":
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0] == ["weekday", "day_name", "plays"] and len(rows) == 8
    elif output_format == "json":
        answer = json.loads(out)[0]
        assert answer["query"] == "plays_by_weekday" and sum(r["plays"] for r in answer["rows"]) == 6820
    else:
        assert "| weekday | day_name | plays |" in out


def same_value(cell, value):
    """Does a CSV cell (text) hold a query's value? Numbers compare as numbers (3.5 is 3.50)."""
    if value is None:
        return cell == ""
    if isinstance(value, (int, float, Decimal)):
        return Decimal(cell) == Decimal(str(value))
    return cell == str(value)


def test_csv_of_every_query_goes_to_one_file_per_query(loaded_sample, run, tmp_path):
    folder = tmp_path / "exports"  # created by the run
    code, out = run(analytics, "--config", loaded_sample, "--format", "csv", "--output", folder)
    assert code == 0, out
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.csv" for name in analytics.QUERIES)
    assert len(out.splitlines()) == len(analytics.QUERIES)  # one line per file written
    for name in analytics.QUERIES:
        columns, rows = analytics.answer(name, loaded_sample)
        assert f"wrote {folder / name}.csv ({len(rows)} row" in out
        with open(folder / f"{name}.csv", newline="", encoding="utf-8") as file:
            header, *cells = list(csv.reader(file))
        assert header == columns, name
        assert len(cells) == len(rows), name
        for cell_row, row in zip(cells, rows, strict=True):
            assert all(same_value(c, v) for c, v in zip(cell_row, row, strict=True)), (name, cell_row, row)


@pytest.mark.parametrize("queries", [[], ["top_songs", "top_artists"]], ids=["all", "two"])
def test_csv_of_several_queries_without_output_is_a_usage_error(queries, generated, config_for, run):
    code, out = run(analytics, "--config", config_for(generated), *queries, "--format", "csv")
    count = len(queries or analytics.QUERIES)
    assert code == 2
    assert out.splitlines() == [
        f"error: CSV holds one table and {count} queries were asked for: add --output DIR "
        "to write DIR/<query>.csv for each, or name one query"
    ]


def test_json_of_several_queries_is_one_document(loaded_sample, run):
    for queries in ([], ["top_songs", "paid_vs_free"]):
        code, out = run(analytics, "--config", loaded_sample, *queries, "--format", "json")
        assert code == 0, out
        answers = json.loads(out)
        assert [a["query"] for a in answers] == (queries or list(analytics.QUERIES))
        for answer in answers:
            assert len(answer["rows"]) == len(analytics.answer(answer["query"], loaded_sample)[1])


def test_each_file_of_output_holds_what_its_query_alone_prints(loaded_sample, run, tmp_path):
    names = ["plays_by_weekday", "paid_vs_free"]
    for output_format, extension in analytics.FORMATS.items():
        folder = tmp_path / output_format
        code, out = run(
            analytics, "--config", loaded_sample, *names, "--format", output_format, "--output", folder
        )
        assert code == 0, out
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.{extension}" for name in names)
        for name in names:
            code, alone = run(analytics, "--config", loaded_sample, name, "--format", output_format)
            assert (folder / f"{name}.{extension}").read_text(encoding="utf-8") == alone, output_format


def test_output_that_is_a_file_is_a_usage_error(generated, config_for, run, tmp_path):
    taken = tmp_path / "exports"
    taken.write_text("mine")
    code, out = run(analytics, "--config", config_for(generated), "--format", "csv", "--output", taken)
    assert code == 2
    assert out.splitlines() == [
        f"error: --output {taken} is a file; give a folder (it is created if missing)"
    ]
    assert taken.read_text() == "mine"


def test_output_that_cannot_be_made_is_a_usage_error(loaded_sample, run, tmp_path):
    beneath_a_file = tmp_path / "dwh.cfg" / "exports"  # the config is a file
    code, out = run(analytics, "--config", loaded_sample, "top_songs", "--output", beneath_a_file)
    assert code == 2
    assert out.splitlines() == [f"error: cannot write {beneath_a_file}: Not a directory"]


def test_help_shows_every_option_in_an_example(run):
    code, out = run(analytics, "--help")
    assert code == 0
    examples = [line for line in out.split("examples:")[1].splitlines() if "python analytics.py" in line]
    options = [
        option
        for action in analytics.build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    assert [option for option in options if not any(option in line for line in examples)] == []
    for output_format in analytics.FORMATS:
        if output_format != "table":  # the default
            assert any(f"--format {output_format}" in line for line in examples), output_format


def test_unknown_query_is_a_usage_error(loaded_sample, run):
    code, out = run(analytics, "--config", loaded_sample, "top_hats")
    assert code == 2 and "error: unknown query top_hats; run with --list" in out


@pytest.mark.parametrize("name", list(analytics.QUERIES))
def test_analytics_query_is_redshift_sql(name):
    assert redshift_problems(analytics.QUERIES[name].sql) == []


# --- Dry runs ----------------------------------------------------------------------------------


def test_dry_run_prints_the_sql_and_touches_nothing(loaded_sample, run, query):
    before = query("SELECT COUNT(*) FROM songplays")
    code, out = run(create_tables, "--config", loaded_sample, "--dry-run")
    assert code == 0
    assert "DROP TABLE IF EXISTS songplays;" in out and "CREATE TABLE IF NOT EXISTS songplays (" in out
    code, out = run(etl, "--config", loaded_sample, "--dry-run", "--from", "2018-11-05", "--to", "2018-11-06")
    assert code == 0
    assert "-- staging_events: rows from 2 files under" in out
    assert "INSERT INTO songplays (" in out and out.rstrip().endswith("COMMIT;")
    # PostgreSQL: statistics for the star tables before the checks plan their queries.
    assert out.index("ANALYZE songplays;") < out.index("-- check: ")
    assert query("SELECT COUNT(*) FROM songplays") == before


def test_dry_run_needs_no_database(generated, tmp_path, run):
    from conftest import write_config

    config = write_config(tmp_path, "host=127.0.0.1 port=1 dbname=x password=hunter2-secret", generated)
    code, out = run(etl, "--config", config, "--dry-run")
    assert code == 0 and "pg_advisory_xact_lock" in out
    assert "hunter2-secret" not in out


def test_dry_run_lists_the_statements_a_run_sends_in_order(generated, load, run, config_for):
    out = load(generated, "--verbose")
    code, plan = run(etl, "--config", config_for(generated), "--dry-run")
    assert code == 0
    transform_statements = [
        block.split("\n", 1)[1].rstrip(";\n ")
        for block in plan.split("-- ")[1:]
        if block.startswith(("new_songplays", "songplays", "users", "songs", "artists", "time", "latest"))
        and sql_queries.FILES_RETRACTED not in block.split("\n", 1)[0]  # a first load takes nothing back
    ]
    # the log shows parameters written in (the plays window): statements up to them
    positions = [out.find(statement.split("%(")[0].strip()) for statement in transform_statements]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)


def test_progress_is_plain_log_lines_when_not_a_terminal(generated, load, monkeypatch):
    from sparkify.output import Progress

    monkeypatch.setattr(Progress, "PLAIN_INTERVAL", 0.0)
    out = load(generated)
    assert "staging_events  " in out and " files, " in out and " rows/s, " in out


def test_progress_rewrites_one_line_on_a_terminal():
    from sparkify.output import Progress, configure_logging

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    configure_logging()
    screen = Terminal()
    progress = Progress("staging_events", 10, stream=screen)
    progress.TERMINAL_INTERVAL = 0.0
    progress.update(3, 1200)
    progress.update(7, 2800)
    progress.done()
    assert screen.getvalue().count("\r") == 3
    assert "7 of 10 files, 2,800 rows" in screen.getvalue()
