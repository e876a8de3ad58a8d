"""Benchmark the local pipeline at scale, against PostgreSQL's own limit, in one run.

Generates (and caches in .bench/, keyed by size and seed) a dataset with sample_data.py,
runs the full local pipeline (create tables, stage, transform, checks, row counts) on a
PostgreSQL server and times each phase; then the daily load: one new day of 300 events
(no new song files) into that warehouse, a run with nothing new, and the same day into a
warehouse with a one-song catalogue, each as a whole `etl.py` process; songs that arrive
after their plays; and files taken back: one day's log file corrected in place (every
second event kept), then the same day deleted, each followed by a whole `etl.py` process
(`--allow-retract` when this etl.py has it) and put back afterwards. Before the clock
starts it reads the dataset once (so it sits in the page cache, as the limit's CSV does)
and waits until no autovacuum worker is busy with an earlier run's tables. In the same run it measures:
  the limit    - the same staged rows loaded by COPY … FROM STDIN from ready-made CSV
                 (no JSON parsing at all), into the same tables;
  row inserts  - the usual approach, one INSERT per row via executemany, on a subset of
                 the events (--row-insert-sample), extrapolated per row.
Prints a table and writes the numbers to a JSON file.

The server is a throwaway cluster in .bench/pg, unless --dsn names a database (its
Sparkify tables are dropped and recreated).

examples:
  python bench.py                                   # 1,000,000 events, 100,000 song files
  python bench.py --events 20000 --songs 2000 --out /tmp/bench.json
  python bench.py --seed 2 --cache-dir /tmp/bench-data --generate-only   # only make the dataset
  python bench.py --dsn "dbname=bench" --row-insert-sample 10000   # its Sparkify tables are dropped
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg2

import create_tables
import etl
import sample_data
import sql_queries
from sparkify import pg_cluster, roles, warehouse
from sparkify.config import load_config
from sparkify.jsonfiles import list_data_files, read_records
from sparkify.output import configure_logging, table
from sparkify.staging import Counters, RowConverter, read_jsonpaths, staging_columns

ROOT = Path(__file__).resolve().parent
BENCH_DIR = ROOT / ".bench"


def dataset(events, songs, seed, cache_dir):
    """The cached dataset for this size and seed, generated on first use."""
    folder = Path(cache_dir) / f"events{events}-songs{songs}-seed{seed}-v{sample_data.GENERATOR_VERSION}"
    done = folder / ".complete"
    if not done.exists():
        started = time.perf_counter()
        sample_data.generate(folder, events=events, songs=songs, seed=seed)
        done.write_text("ok")
        os.sync()  # the files' write-back must not compete with the measured run
        print(f"generated {events} events and {songs} song files in {time.perf_counter() - started:.1f} s")
    return folder


def warm_page_cache(data_dir):
    """Read every file once, so the run is timed with the data in the OS page cache, as the
    COPY limit is. Cold, this machine's disk costs ~100 µs per small file on top."""
    started = time.perf_counter()
    for path, _ in list_data_files(data_dir).files:
        with open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    return time.perf_counter() - started


def wait_for_autovacuum(dsn, timeout_seconds=300):
    """Wait until no autovacuum worker runs: the previous run's tables are still being
    vacuumed for a while after it committed, and would share the CPU with this run."""
    started = time.perf_counter()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            while time.perf_counter() - started < timeout_seconds:
                cur.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
                if cur.fetchone()[0] == 0:
                    break
                time.sleep(0.5)
    finally:
        conn.close()
    return time.perf_counter() - started


def write_config(folder, dsn, data_dir, name="bench.cfg"):
    config = Path(folder) / name
    config.write_text(
        "[ETL]\nTARGET = local\n[LOCAL]\n"
        f"DSN = {dsn}\nADMIN_DSN = {dsn}\n[S3]\nLOG_DATA = {data_dir / 'log_data'}\n"
        f"SONG_DATA = {data_dir / 'song_data'}\nLOG_JSONPATH = {data_dir / 'log_json_path.json'}\n"
    )
    return config


def run_pipeline(config_path):
    """create_tables + etl's load on one connection; returns (seconds by phase, report)."""
    config = load_config(config_path)
    seconds = {}
    started = time.perf_counter()
    if create_tables.main(["--config", str(config_path), "--quiet"]) != 0:
        raise SystemExit("create_tables.py failed")
    seconds["create tables"] = time.perf_counter() - started
    conn = warehouse.connect(config)
    try:
        report = etl.load(conn, config, (None, None))
    finally:
        conn.close()
    seconds.update(report.seconds_by_phase)
    return seconds, report


def copy_limit_seconds(dsn, tables):
    """Seconds for COPY FROM STDIN of the staged rows, from CSV already in memory/disk."""
    conn = psycopg2.connect(dsn)
    total = 0.0
    try:
        with conn.cursor() as cur:
            for staging_table in tables:
                with tempfile.TemporaryFile() as csv_file:
                    cur.copy_expert(f"COPY {staging_table.name} TO STDOUT WITH (FORMAT csv)", csv_file)
                    csv_file.seek(0)
                    columns = ", ".join(staging_table.column_names)
                    cur.execute(f"TRUNCATE {staging_table.name}")
                    started = time.perf_counter()
                    cur.copy_expert(
                        f"COPY {staging_table.name} ({columns}) FROM STDIN WITH (FORMAT csv, FREEZE)",
                        csv_file,
                    )
                    total += time.perf_counter() - started
        conn.rollback()  # leave the staged rows as the pipeline left them
    finally:
        conn.close()
    return total


def row_insert_seconds_per_row(dsn, data_dir, sample_size):
    """The usual approach: parse each event and INSERT it, executemany, on a subset."""
    paths = read_jsonpaths(data_dir / "log_json_path.json")
    columns = staging_columns(sql_queries.STAGING_EVENTS, paths)
    convert = RowConverter(columns, repair=False, counters=Counters())
    placeholders = ", ".join(["%s"] * len(columns))
    copied = ", ".join(name for name, _ in sql_queries.STAGING_EVENTS.copied_columns)
    insert = f"INSERT INTO {sql_queries.STAGING_EVENTS.name} ({copied}) VALUES ({placeholders})"
    conn = psycopg2.connect(dsn)
    rows = 0
    started = time.perf_counter()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE bench_rows (LIKE {sql_queries.STAGING_EVENTS.name})")
            insert = insert.replace(sql_queries.STAGING_EVENTS.name, "bench_rows", 1)
            batch = []
            for path, _ in list_data_files(data_dir / "log_data").files:
                for item in read_records(path):
                    values = [None if v == "\\N" else v for v in convert(item.value).rstrip("\n").split("\t")]
                    batch.append(values)
                    rows += 1
                    if len(batch) == 1000 or rows == sample_size:
                        cur.executemany(insert, batch)
                        batch = []
                    if rows == sample_size:
                        break
                if rows == sample_size:
                    break
            if batch:
                cur.executemany(insert, batch)
        conn.commit()
    finally:
        conn.close()
    return (time.perf_counter() - started) / max(rows, 1), rows


def machine():
    with open("/proc/meminfo") as meminfo:
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    cpu = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu
            )
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(total_kb / 1024**2, 1),
        "cpu": cpu,
        "python": platform.python_version(),
    }


def postgres_version(dsn):
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
    conn.close()
    return version


def peak_rss_mb():
    """Peak resident memory of this process and of its largest child (the parse workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(own, 1), round(children, 1)


def measure(args):
    data_dir = dataset(args.events, args.songs, args.seed, args.cache_dir)
    dsn = args.dsn or pg_cluster.start(BENCH_DIR / "pg")  # .bench only when it is asked for
    config = write_config(tempfile.mkdtemp(prefix="sparkify-bench-"), dsn, data_dir)
    roles.setup(config)  # the roles create_tables.py grants to; the bench loads as the admin
    warm_up = warm_page_cache(data_dir)
    quiet_wait = wait_for_autovacuum(dsn)
    started = time.perf_counter()
    seconds, report = run_pipeline(config)
    total = time.perf_counter() - started
    rss, workers_rss = peak_rss_mb()
    staged = sum(seconds[f"stage {t.name}"] for t in sql_queries.STAGING_TABLES)
    limit = copy_limit_seconds(dsn, sql_queries.STAGING_TABLES)
    per_row, sampled = row_insert_seconds_per_row(dsn, data_dir, args.row_insert_sample)
    staged_rows = sum(counters.loaded for counters in report.staging.values())
    daily = measure_daily(dsn, data_dir, config)
    rematch = measure_rematch(dsn, data_dir, config)
    corrected = measure_corrected_day(dsn, data_dir, config)
    deleted = measure_deleted_day(dsn, data_dir, config)
    return {
        **daily,
        **rematch,
        **corrected,
        **deleted,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "events": args.events,
        "song_files": args.songs,
        "seed": args.seed,
        "rows_after": report.rows_after,
        "seconds_total": round(total, 2),
        "warm_up_seconds_not_counted": round(warm_up, 2),
        "autovacuum_wait_seconds_not_counted": round(quiet_wait, 2),
        "seconds_by_phase": {name: round(value, 2) for name, value in seconds.items()},
        "events_per_second": round(args.events / total),
        "staging_seconds": round(staged, 2),
        "copy_limit_seconds": round(limit, 2),
        "stage_vs_copy_limit": round(staged / limit, 2),
        "row_insert_sample_rows": sampled,
        "row_insert_seconds_per_row": per_row,
        "row_insert_seconds_extrapolated": round(per_row * staged_rows, 1),
        "speedup_vs_row_inserts": round(per_row * staged_rows / staged, 1),
        "peak_rss_mb": rss,
        "peak_rss_mb_parse_workers": workers_rss,
        "machine": machine(),
        "postgres": postgres_version(dsn),
    }


# --- The daily load ---------------------------------------------------------------------------

DAY_MS = 86_400_000


def write_new_day(data_dir, events=300):
    """A day after the last one, of `events` events: the last day's first events moved a
    day on. Returns its path (the caller removes it)."""
    last = sorted(Path(data_dir, "log_data").rglob("*-events.json"))[-1]
    lines = []
    with open(last, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                record["ts"] += DAY_MS
                lines.append(json.dumps(record))
            if len(lines) == events:
                break
    day = datetime.fromtimestamp(json.loads(lines[0])["ts"] / 1000, UTC).date()
    path = Path(data_dir, "log_data", f"{day:%Y}", f"{day:%m}", f"{day}-events.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def etl_process(config_path, *options):
    """A whole `python etl.py` process, as a daily job runs it: (seconds, its output)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "etl.py"), "--config", str(config_path), *options],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"etl.py failed: {done.stdout}{done.stderr}")
    return round(time.perf_counter() - started, 2), done.stdout + done.stderr


def timed_etl_process(config_path, *options):
    """Seconds for the whole `python etl.py --quiet` process."""
    return etl_process(config_path, "--quiet", *options)[0]


def retract_options():
    """--allow-retract when this etl.py has it (the code before #22 ignores gone files)."""
    done = subprocess.run([sys.executable, str(ROOT / "etl.py"), "--help"], capture_output=True, text=True)
    return ["--allow-retract"] if "--allow-retract" in done.stdout else []


def follow_the_source(config_path):
    """An untimed run after a measure put the files back: the warehouse holds the files as
    they are again (where etl.py takes gone files back), so the next measure starts even."""
    timed_etl_process(config_path, *retract_options())


def one_song_warehouse(dsn, data_dir, folder):
    """A database holding one song file and the last day of the log, loaded."""
    small = Path(folder) / "one-song"
    song = next(Path(data_dir, "song_data").rglob("*.json"))
    (small / "song_data").mkdir(parents=True)
    (small / "song_data" / song.name).write_bytes(song.read_bytes())
    (small / "log_json_path.json").write_bytes(Path(data_dir, "log_json_path.json").read_bytes())
    last = sorted(Path(data_dir, "log_data").rglob("*-events.json"))[-1]
    target = small / last.relative_to(data_dir)
    target.parent.mkdir(parents=True)
    target.write_bytes(last.read_bytes())
    name = "bench_one_song"
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    admin.close()
    config = write_config(folder, f"{dsn} dbname={name}", small, name="one-song.cfg")
    run_pipeline(config)
    return small, config


DAILY_RUNS = 3


def measure_daily(dsn, data_dir, config_path):
    """After the full load: DAILY_RUNS new days (300 events each, no new song files) one
    after another, a run with nothing new, and the same day into a one-song warehouse."""
    folder = tempfile.mkdtemp(prefix="sparkify-bench-daily-")
    small, small_config = one_song_warehouse(dsn, data_dir, folder)
    new_days, daily = [], []
    try:
        wait_for_autovacuum(dsn)
        for _ in range(DAILY_RUNS):
            new_days.append(write_new_day(data_dir))
            daily.append(timed_etl_process(config_path))
        nothing_new = timed_etl_process(config_path)
        copy = small / new_days[0].relative_to(data_dir)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(new_days[0].read_bytes())
        one_song = timed_etl_process(small_config)
    finally:
        for day in new_days:
            day.unlink()
        if new_days and not any(new_days[0].parent.iterdir()):
            new_days[0].parent.rmdir()
    follow_the_source(config_path)
    listing_started = time.perf_counter()
    list_data_files(data_dir / "song_data")
    list_data_files(data_dir / "log_data")
    median = sorted(daily)[len(daily) // 2]
    return {
        "daily_seconds": median,
        "daily_seconds_each": daily,
        "nothing_new_seconds": nothing_new,
        "one_song_catalogue_daily_seconds": one_song,
        "daily_vs_one_song": round(median / one_song, 2),
        "listing_seconds": round(time.perf_counter() - listing_started, 2),
    }


# --- Songs arriving after their plays ------------------------------------------------------

REMATCH_SONGS = 100
LATE_SONGS_FOLDER = "ZZ-late"  # under song_data, removed after the measure


def played_songs(dsn, count):
    """(song row, plays) of `count` songs that have plays, as song records."""
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT s.song_id, s.title, s.artist_id, s.artist_name, s.duration, COUNT(*)
            FROM songs AS s
            JOIN songplays AS sp ON sp.song_id = s.song_id
            GROUP BY s.song_id, s.title, s.artist_id, s.artist_name, s.duration
            ORDER BY s.song_id
            LIMIT %s
            """,
            (count,),
        )
        rows = cur.fetchall()
    conn.close()
    return rows


def write_equal_twins(data_dir, songs):
    """For each song, a new song file of the same title, artist and duration with a
    smaller song_id: every play of the song must move to it. Returns the new files."""
    folder = Path(data_dir, "song_data", LATE_SONGS_FOLDER)
    folder.mkdir(exist_ok=True)
    written = []
    for song_id, title, artist_id, artist_name, duration, _plays in songs:
        record = {
            "num_songs": 1,
            "artist_id": artist_id,
            "artist_latitude": None,
            "artist_longitude": None,
            "artist_location": None,
            "artist_name": artist_name,
            "song_id": song_id[:8] + "0" * (len(song_id) - 8),
            "title": title,
            "duration": duration,
            "year": 0,
        }
        path = folder / f"TRLATE{len(written):06d}.json"
        path.write_text(json.dumps(record))
        written.append(path)
    return written


def rematch_plan(dsn, new_song_ids):
    """The plan of matching plays again, for the song_changes those files made (run
    after the fact, in a transaction rolled back)."""
    select = sql_queries.REMATCHED_PLAYS_CREATE.replace(
        "CREATE TEMP TABLE rematched_plays AS", "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)"
    )
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            for setting in sql_queries.POSTGRES_RUN_SETTINGS:  # as the run plans it
                cur.execute(setting)
            cur.execute(
                """
                CREATE TEMP TABLE song_changes AS
                SELECT song_id, title, artist_id, year, duration, artist_name,
                       CAST(NULL AS VARCHAR(512)) AS replaced_title,
                       CAST(NULL AS VARCHAR(512)) AS replaced_artist_name
                FROM songs
                WHERE song_id = ANY(%s)
                """,
                (list(new_song_ids),),
            )
            cur.execute("ANALYZE song_changes")
            cur.execute(sql_queries.GONE_SONGS_NONE)  # new song files take no song away
            cur.execute(select)
            return [line for (line,) in cur.fetchall()]
    finally:
        conn.rollback()
        conn.close()


def measure_rematch(dsn, data_dir, config_path):
    """REMATCH_SONGS new song files, each an equally long twin (smaller song_id) of a
    song with plays, into the full warehouse: a whole etl.py process, the plays it
    matched again, and the plan of that statement."""
    songs = played_songs(dsn, REMATCH_SONGS)
    late = Path(data_dir, "song_data", LATE_SONGS_FOLDER)
    try:
        files = write_equal_twins(data_dir, songs)
        wait_for_autovacuum(dsn)
        seconds = timed_etl_process(config_path)
    finally:  # the cached dataset stays as it was generated
        for path in late.glob("*.json"):
            path.unlink()
        if late.is_dir():
            late.rmdir()
    new_ids = [song_id[:8] + "0" * (len(song_id) - 8) for song_id, *_ in songs]
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM songplays WHERE song_id = ANY(%s)", (new_ids,))
        (moved,) = cur.fetchone()
        cur.execute("SELECT COUNT(*) FROM songplays")
        (fact,) = cur.fetchone()
    conn.close()
    plan = rematch_plan(dsn, new_ids)
    follow_the_source(config_path)
    return {
        "rematch_new_song_files": len(files),
        "rematch_plays_moved": moved,
        "rematch_fact_rows": fact,
        "rematch_etl_seconds": seconds,
        "rematch_plan": plan,
    }


# --- Files taken back ----------------------------------------------------------------------


def middle_day(data_dir):
    """The log file of the middle day of the dataset's month."""
    days = sorted(Path(data_dir, "log_data").rglob("*-events.json"))
    return days[len(days) // 2]


def plays_of_day(dsn, path):
    """Plays in songplays on the day a log file is named after."""
    day = date.fromisoformat(path.name[:10])
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM songplays WHERE start_time >= %s AND start_time < %s",
            (day, day + timedelta(days=1)),
        )
        (plays,) = cur.fetchone()
    conn.close()
    return plays


def keep_every_second_event(path):
    """Rewrite a log file in place with every second event of it, as an upstream
    correction would; returns (events before, events kept)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = lines[::2]
    with open(path, "w", encoding="utf-8") as handle:  # in place: same path, same inode
        handle.write("\n".join(kept) + "\n")
    return len(lines), len(kept)


def step_lines(output):
    """The lines of etl.py's output that name a statement and its seconds, and the checks'."""
    lines = [line.rstrip() for line in output.splitlines()]
    return [line for line in lines if line.endswith(" s)") or line.startswith("checks:")]


def last_run_phases(dsn):
    """Seconds by phase of the latest run, as it recorded them in etl_runs (None: no such
    phase, as in a run that staged nothing)."""
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT stage_seconds, transform_seconds, checks_seconds, total_seconds "
            "FROM etl_runs ORDER BY started_at DESC LIMIT 1"
        )
        row = cur.fetchone()
    conn.close()
    phases = ("stage", "transform", "checks", "total")
    return {
        phase: None if value is None else round(value, 2) for phase, value in zip(phases, row, strict=True)
    }


def measure_corrected_day(dsn, data_dir, config_path):
    """After the full load, one day's log file rewritten in place keeping every second
    event, then a whole etl.py process; then the file is put back and loaded again."""
    day = middle_day(data_dir)
    original, plays_before = day.read_bytes(), plays_of_day(dsn, day)
    try:
        events, kept = keep_every_second_event(day)
        wait_for_autovacuum(dsn)
        seconds, output = etl_process(config_path)
        plays_after, phases = plays_of_day(dsn, day), last_run_phases(dsn)
    finally:  # the cached dataset stays as it was generated
        day.write_bytes(original)
    follow_the_source(config_path)
    return {
        "corrected_day_file": day.name,
        "corrected_day_events": events,
        "corrected_day_events_kept": kept,
        "corrected_day_plays_before": plays_before,
        "corrected_day_plays_after": plays_after,
        "corrected_day_etl_seconds": seconds,
        "corrected_day_phases": phases,
        "corrected_day_steps": step_lines(output),
    }


def measure_deleted_day(dsn, data_dir, config_path):
    """After the full load, one day's log file deleted, then a whole etl.py process
    (--allow-retract where it has it); then the file is put back and loaded again."""
    day = middle_day(data_dir)
    aside = Path(tempfile.mkdtemp(prefix="sparkify-bench-gone-")) / day.name
    plays_before = plays_of_day(dsn, day)
    shutil.move(day, aside)  # a move keeps its size and modification time
    try:
        wait_for_autovacuum(dsn)
        options = retract_options()
        seconds, output = etl_process(config_path, *options)
        plays_after, phases = plays_of_day(dsn, day), last_run_phases(dsn)
    finally:
        shutil.move(aside, day)
        aside.parent.rmdir()
    follow_the_source(config_path)
    return {
        "deleted_day_file": day.name,
        "deleted_day_options": options,
        "deleted_day_plays_before": plays_before,
        "deleted_day_plays_after": plays_after,
        "deleted_day_etl_seconds": seconds,
        "deleted_day_phases": phases,
        "deleted_day_steps": step_lines(output),
    }


def phases_text(phases):
    return " / ".join(
        "-" if phases[name] is None else str(phases[name]) for name in ("stage", "transform", "checks")
    )


def render(result):
    phases = [(name, value) for name, value in result["seconds_by_phase"].items()]
    lines = [
        f"{result['events']:,} events, {result['song_files']:,} song files "
        f"({result['machine']['cores']} cores, {result['machine']['memory_gb']} GB, "
        f"PostgreSQL {result['postgres']})",
        "",
        table(phases + [("total", result["seconds_total"])], ("phase", "seconds")),
        "",
        table(
            [
                ("events per second", result["events_per_second"]),
                ("staging seconds", result["staging_seconds"]),
                ("COPY-from-CSV limit seconds", result["copy_limit_seconds"]),
                ("staging / limit", result["stage_vs_copy_limit"]),
                ("row INSERTs, extrapolated s", result["row_insert_seconds_extrapolated"]),
                ("speedup vs row INSERTs", result["speedup_vs_row_inserts"]),
                ("peak RSS MB (main)", result["peak_rss_mb"]),
                ("peak RSS MB (parse worker)", result["peak_rss_mb_parse_workers"]),
                ("daily load, whole etl.py (300 events), median", result["daily_seconds"]),
                ("  each of the days in turn", " / ".join(map(str, result["daily_seconds_each"]))),
                ("nothing new, whole etl.py", result["nothing_new_seconds"]),
                ("same day, one-song catalogue", result["one_song_catalogue_daily_seconds"]),
                ("daily / one-song", result["daily_vs_one_song"]),
                ("listing both folders", result["listing_seconds"]),
                (
                    f"{result['rematch_new_song_files']} songs arrive after their plays, whole etl.py",
                    result["rematch_etl_seconds"],
                ),
                (
                    f"  plays matched again (of {result['rematch_fact_rows']:,})",
                    result["rematch_plays_moved"],
                ),
                (
                    f"one day corrected ({result['corrected_day_events_kept']:,} of "
                    f"{result['corrected_day_events']:,} events kept), whole etl.py",
                    result["corrected_day_etl_seconds"],
                ),
                (
                    "  plays of that day before / after",
                    f"{result['corrected_day_plays_before']:,} / {result['corrected_day_plays_after']:,}",
                ),
                ("  stage / transform / checks in the run (s)", phases_text(result["corrected_day_phases"])),
                (
                    f"one day deleted, whole etl.py {' '.join(result['deleted_day_options'])}".rstrip(),
                    result["deleted_day_etl_seconds"],
                ),
                (
                    "  plays of that day before / after",
                    f"{result['deleted_day_plays_before']:,} / {result['deleted_day_plays_after']:,}",
                ),
                ("  stage / transform / checks in the run (s)", phases_text(result["deleted_day_phases"])),
            ],
            ("measure", "value"),
        ),
    ]
    lines += ["", "plan of matching plays again:", *(f"  {line}" for line in result["rematch_plan"])]
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="log events (default 1,000,000)")
    parser.add_argument("--songs", type=int, default=100_000, help="song files (default 100,000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument(
        "--row-insert-sample",
        type=int,
        default=50_000,
        help="events inserted row by row for the comparison (default 50,000)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=BENCH_DIR / "data", help="where datasets are cached"
    )
    parser.add_argument("--dsn", help="use this database instead of a throwaway cluster (tables are dropped)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results.json", help="JSON results file")
    parser.add_argument("--generate-only", action="store_true", help="only generate (and cache) the dataset")
    return parser


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv or [])
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
    configure_logging(quiet=True)
    if args.generate_only:
        print(dataset(args.events, args.songs, args.seed, args.cache_dir))
        return 0
    result = measure(args)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
