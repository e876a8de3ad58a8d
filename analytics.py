"""Answer the analytics team's standard questions from the star schema.

Each question is a named query (`QUERIES`); run all of them or name the ones you want.
The same SQL runs on PostgreSQL and Redshift. A CSV file holds one table, so CSV for
several queries (or all) goes to a folder, one DIR/<query>.csv each; JSON for several
queries is one list; tables and markdown follow one another.

examples:
  python analytics.py --config dwh.cfg                      # every question, as tables
  python analytics.py --config dwh.cfg plays_by_hour top_songs
  python analytics.py --config dwh.cfg top_artists --format csv > top_artists.csv
  python analytics.py --config dwh.cfg --format csv --output exports   # exports/<query>.csv
  python analytics.py --config dwh.cfg --format json > answers.json    # one JSON list
  python analytics.py --config dwh.cfg --format markdown --output docs --quiet  # no "wrote" lines
  python analytics.py --config dwh.cfg top_songs --verbose  # also the SQL sent
  python analytics.py --list

In a notebook:
  import analytics
  columns, rows = analytics.answer("plays_by_hour", config_path="dwh.cfg")
"""

import csv
import io
import json
import logging
import sys
from pathlib import Path
from typing import NamedTuple

from sparkify import cli, warehouse
from sparkify.config import load_config
from sparkify.errors import UsageError
from sparkify.output import mask_secrets, table

# Each output format and the extension of its files under --output.
FORMATS = {"table": "txt", "csv": "csv", "json": "json", "markdown": "md"}
BAR_WIDTH = 40
log = logging.getLogger("sparkify")


class Query(NamedTuple):
    title: str
    sql: str
    chart: bool = False  # a distribution: the table also gets a text bar chart


BROWSER = """CASE
            WHEN sp.user_agent LIKE '%Edge/%' THEN 'Edge'
            WHEN sp.user_agent LIKE '%Firefox/%' THEN 'Firefox'
            WHEN sp.user_agent LIKE '%Chrome/%' THEN 'Chrome'
            WHEN sp.user_agent LIKE '%Safari/%' THEN 'Safari'
            WHEN sp.user_agent LIKE '%MSIE%' OR sp.user_agent LIKE '%Trident/%' THEN 'Internet Explorer'
            ELSE 'Other'
        END"""

OPERATING_SYSTEM = """CASE
            WHEN sp.user_agent LIKE '%iPhone%' OR sp.user_agent LIKE '%iPad%' THEN 'iOS'
            WHEN sp.user_agent LIKE '%Android%' THEN 'Android'
            WHEN sp.user_agent LIKE '%Windows%' THEN 'Windows'
            WHEN sp.user_agent LIKE '%Macintosh%' THEN 'Mac OS X'
            WHEN sp.user_agent LIKE '%Linux%' THEN 'Linux'
            ELSE 'Other'
        END"""


def plays_and_users_by(column, expression):
    """Plays and distinct users per value of an expression over songplays."""
    return f"""SELECT {column}, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS users
FROM (
    SELECT {expression} AS {column}, sp.user_id
    FROM songplays AS sp
) AS parsed
GROUP BY {column}
ORDER BY plays DESC, {column}"""


QUERIES = {
    "top_songs": Query(
        "Top 10 songs by plays: every play, by the title and artist the event named "
        "(matched_plays: how many of them are matched to a song of the catalogue)",
        """SELECT
    sp.song_title AS title,
    sp.artist_name AS artist,
    COUNT(*) AS plays,
    COUNT(sp.song_id) AS matched_plays
FROM songplays AS sp
WHERE sp.song_title IS NOT NULL
GROUP BY sp.song_title, sp.artist_name
ORDER BY plays DESC, title, artist
LIMIT 10""",
    ),
    "top_artists": Query(
        "Top 10 artists by plays: every play, by the artist the event named "
        "(matched_plays: how many of them are matched to the catalogue)",
        """SELECT
    sp.artist_name AS artist,
    COUNT(*) AS plays,
    COUNT(sp.artist_id) AS matched_plays
FROM songplays AS sp
WHERE sp.artist_name IS NOT NULL
GROUP BY sp.artist_name
ORDER BY plays DESC, artist
LIMIT 10""",
    ),
    "most_active_users": Query(
        "Top 10 users by plays",
        """SELECT u.user_id, u.first_name, u.last_name, u.level, COUNT(*) AS plays
FROM songplays AS sp
JOIN users AS u ON u.user_id = sp.user_id
GROUP BY u.user_id, u.first_name, u.last_name, u.level
ORDER BY plays DESC, u.user_id
LIMIT 10""",
    ),
    "plays_by_hour": Query(
        "Plays by hour of day (UTC)",
        """SELECT t.hour, COUNT(*) AS plays
FROM songplays AS sp
JOIN time AS t ON t.start_time = sp.start_time
GROUP BY t.hour
ORDER BY t.hour""",
        chart=True,
    ),
    "plays_by_weekday": Query(
        "Plays by weekday",
        """SELECT
    t.weekday,
    CASE t.weekday
        WHEN 0 THEN 'Sunday' WHEN 1 THEN 'Monday' WHEN 2 THEN 'Tuesday'
        WHEN 3 THEN 'Wednesday' WHEN 4 THEN 'Thursday' WHEN 5 THEN 'Friday'
        ELSE 'Saturday'
    END AS day_name,
    COUNT(*) AS plays
FROM songplays AS sp
JOIN time AS t ON t.start_time = sp.start_time
GROUP BY t.weekday
ORDER BY t.weekday""",
        chart=True,
    ),
    "plays_by_day": Query(
        "Plays by day",
        """SELECT t.year, t.month, t.day, COUNT(*) AS plays
FROM songplays AS sp
JOIN time AS t ON t.start_time = sp.start_time
GROUP BY t.year, t.month, t.day
ORDER BY t.year, t.month, t.day""",
        chart=True,
    ),
    "paid_vs_free": Query(
        "Paid vs free: plays (by the level at play time) and users (by their current level)",
        """SELECT
    levels.level,
    COALESCE(plays.plays, 0) AS plays,
    COALESCE(plays.users_playing, 0) AS users_playing,
    COALESCE(current_users.users_now, 0) AS users_now
FROM (
    SELECT level FROM songplays GROUP BY level
    UNION
    SELECT level FROM users GROUP BY level
) AS levels
LEFT JOIN (
    SELECT level, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS users_playing
    FROM songplays
    GROUP BY level
) AS plays ON plays.level = levels.level
LEFT JOIN (
    SELECT level, COUNT(*) AS users_now FROM users GROUP BY level
) AS current_users ON current_users.level = levels.level
ORDER BY levels.level""",
    ),
    "top_locations": Query(
        "Top 10 locations by plays",
        """SELECT sp.location, COUNT(*) AS plays
FROM songplays AS sp
WHERE sp.location IS NOT NULL
GROUP BY sp.location
ORDER BY plays DESC, sp.location
LIMIT 10""",
    ),
    "browsers": Query(
        "Plays and users by browser (parsed from user_agent)",
        plays_and_users_by("browser", BROWSER),
    ),
    "operating_systems": Query(
        "Plays and users by operating system (parsed from user_agent)",
        plays_and_users_by("operating_system", OPERATING_SYSTEM),
    ),
    "sessions_per_user": Query(
        "Sessions per user",
        """SELECT
    COUNT(*) AS users,
    ROUND(AVG(CAST(sessions AS DECIMAL(12, 2))), 2) AS average_sessions,
    MIN(sessions) AS fewest_sessions,
    MAX(sessions) AS most_sessions
FROM (
    SELECT user_id, COUNT(DISTINCT session_id) AS sessions
    FROM songplays
    GROUP BY user_id
) AS per_user""",
    ),
    "plays_per_session": Query(
        "Plays per session",
        """SELECT
    COUNT(*) AS sessions,
    ROUND(AVG(CAST(plays AS DECIMAL(12, 2))), 2) AS average_plays,
    MIN(plays) AS fewest_plays,
    MAX(plays) AS most_plays
FROM (
    SELECT user_id, session_id, COUNT(*) AS plays
    FROM songplays
    GROUP BY user_id, session_id
) AS per_session""",
    ),
}


def run_query(cursor, name):
    """(column names, rows) of one named query."""
    cursor.execute(QUERIES[name].sql)
    return [column[0] for column in cursor.description], cursor.fetchall()


def answer(name, config_path="dwh.cfg"):
    """For notebooks: (column names, rows) of one named query, on the configured warehouse."""
    config = load_config(config_path)
    conn = warehouse.connect(config)
    try:
        with warehouse.database_errors_as("the query"), conn.cursor() as cursor:
            return run_query(cursor, name)
    finally:
        conn.close()


def bar_chart(rows, value_index=-1, width=BAR_WIDTH):
    """Rows with a text bar proportional to their last column."""
    largest = max((row[value_index] for row in rows), default=0) or 1
    return [(*row, "#" * round(width * row[value_index] / largest)) for row in rows]


class Answer(NamedTuple):
    """One query's result: its name, column names and rows."""

    name: str
    columns: list
    rows: list


def render(name, columns, rows, output_format):
    """One query's answer as text in a format (json: one object; see `as_text` for the list)."""
    query = QUERIES[name]
    plain = plain_rows(rows)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(plain)
        return buffer.getvalue().rstrip("\n")
    if output_format == "json":
        return json.dumps(json_record(name, columns, plain), indent=2)
    if output_format == "markdown":
        lines = [f"**{query.title}**", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in plain]
        return "\n".join(lines)
    if query.chart:
        plain, columns = bar_chart(plain), [*columns, ""]
    return f"{query.title}\n{table(plain, columns)}"


def json_record(name, columns, plain_rows):
    return {
        "query": name,
        "title": QUERIES[name].title,
        "rows": [dict(zip(columns, row, strict=True)) for row in plain_rows],
    }


def plain_rows(rows):
    return [tuple(_plain(value) for value in row) for row in rows]


def _plain(value):
    """Decimals and other driver types as plain numbers or text."""
    if value is None or isinstance(value, (int, float, str)):
        return value
    try:
        number = float(value)
        return int(number) if number.is_integer() else number
    except (TypeError, ValueError):
        return str(value)


def as_text(answers, output_format):
    """Answers as one text: JSON is always one list (one valid document, whatever the
    number of queries); tables and markdown follow one another, a blank line between."""
    if output_format == "json":
        records = [json_record(a.name, a.columns, plain_rows(a.rows)) for a in answers]
        return json.dumps(records, indent=2)
    return "\n\n".join(render(*answer, output_format) for answer in answers)


def chosen_queries(args):
    """The queries named (each once, in order), or all of them."""
    unknown = [name for name in args.queries if name not in QUERIES]
    if unknown:
        raise UsageError(f"unknown query {', '.join(unknown)}; run with --list to see them")
    return list(dict.fromkeys(args.queries)) or list(QUERIES)


def check_destination(names, args):
    """Stop before querying when the output could not be loaded or written."""
    # Several CSV tables one after another on stdout is no file any tool can read.
    if args.format == "csv" and len(names) > 1 and args.output is None:
        raise UsageError(
            f"CSV holds one table and {len(names)} queries were asked for: add --output DIR "
            "to write DIR/<query>.csv for each, or name one query"
        )
    if args.output is not None and args.output.exists() and not args.output.is_dir():
        raise UsageError(f"--output {args.output} is a file; give a folder (it is created if missing)")


def fetch_answers(config, names):
    conn = warehouse.connect(config)
    try:
        with warehouse.database_errors_as("the query"), conn.cursor() as cursor:
            return [Answer(name, *run_query(cursor, name)) for name in names]
    finally:
        conn.close()


def write_files(answers, output_format, folder):
    """One file per query, holding what stdout would show for that query alone."""
    extension = FORMATS[output_format]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for answer in answers:
            path = folder / f"{answer.name}.{extension}"
            path.write_text(as_text([answer], output_format) + "\n", encoding="utf-8")
            log.info("wrote %s (%d row%s)", path, len(answer.rows), "" if len(answer.rows) == 1 else "s")
    except OSError as error:
        raise UsageError(f"cannot write {error.filename}: {error.strerror}") from None


def print_answers(args):
    names = chosen_queries(args)
    check_destination(names, args)
    config = load_config(args.config)
    mask_secrets(config.secrets())
    answers = fetch_answers(config, names)  # every query before any output: no partial export
    if args.output is None:
        print(as_text(answers, args.format))
    else:
        write_files(answers, args.format, args.output)


def build_parser():
    parser = cli.parser_for(__doc__)
    parser.add_argument("queries", nargs="*", metavar="QUERY", help="queries to run (default: all)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="write one file per query into DIR (created if missing): DIR/<query>.csv (or .json, .md, "
        ".txt), holding what that query alone prints; CSV of several queries needs it",
    )
    parser.add_argument("--list", action="store_true", help="list the queries and exit")
    return parser


def main(argv=None):
    args, exit_code = cli.parse(build_parser(), argv)
    if args is None:
        return exit_code
    if args.list:
        for name, query in QUERIES.items():
            print(f"{name:20} {query.title}")
        return 0
    return cli.run(print_answers, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
