"""The ledger of runs, etl_runs: one row per run, committed or failed, and
`etl.py --history`, which prints the latest as a table or as JSON."""

import json
from datetime import UTC, date, datetime

import sql_queries
from sparkify.copytext import fit
from sparkify.datasets import DATASETS
from sparkify.output import masked, table

HISTORY_COLUMNS = (
    ("run_id", "run_id"),
    ("started_at", "started (UTC)"),
    ("status", "status"),
    ("target", "target"),
    ("window", "window"),
    ("files", "files"),
    ("records_loaded", "loaded"),
    ("records_rejected", "rejected"),
    ("songplays_added", "+plays"),
    ("total_seconds", "seconds"),
    ("error", "error"),
)


def now():
    return datetime.now(UTC).replace(tzinfo=None)


def run_row(run, config, window, started_at, staging, added, seconds, error=None):
    """The etl_runs row of a run, as ETL_RUNS_INSERT's parameters."""
    totals = staging_totals(staging)
    finished_at = now()
    values = {
        "run_id": run.run_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "status": "failed" if error else "committed",
        "target": config.target,
        "window_from": window[0],
        "window_to": window[1],
        "full_refresh": run.full_refresh,
        **totals,
        **{f"{table.name}_added": added.get(table.name) for table in sql_queries.STAR_TABLES},
        "stage_seconds": sum(v for phase, v in seconds.items() if phase.startswith("stage")) or None,
        "transform_seconds": seconds.get("transform"),
        "checks_seconds": seconds.get("checks"),
        "total_seconds": (finished_at - started_at).total_seconds(),
        "error": fit(masked(error.splitlines()[0])) if error else None,
    }
    return [values[name] for name in sql_queries.ETL_RUNS.column_names]


def staging_totals(staging):
    """Files per dataset and records in all, from either loader's staging results
    ({dataset name: result}; empty when the run failed before staging)."""
    files = {dataset.files_column: None for dataset in DATASETS}
    totals = dict.fromkeys(("records_read", "records_loaded", "records_rejected"))
    if not staging:
        return {**files, **totals}
    results = staging.values()
    for dataset in DATASETS:
        if dataset.name in staging:
            files[dataset.files_column] = staging[dataset.name].files
    return {
        **files,
        "records_read": sum(r.loaded + r.rejected for r in results),
        "records_loaded": sum(r.loaded for r in results),
        "records_rejected": sum(r.rejected for r in results),
    }


def record(cursor, row):
    cursor.execute(sql_queries.ETL_RUNS_INSERT, row)


def latest(cursor, limit):
    """The latest runs, newest first, as dicts."""
    cursor.execute(sql_queries.ETL_RUNS_LATEST, (limit,))
    names = sql_queries.ETL_RUNS.column_names
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def as_json(runs):
    def plain(value):
        return value.isoformat(sep=" ") if isinstance(value, datetime | date) else value

    return json.dumps([{name: plain(value) for name, value in run.items()} for run in runs], indent=2)


def as_table(runs):
    rows = []
    for run in runs:
        shown = {
            **run,
            "started_at": run["started_at"].strftime("%Y-%m-%d %H:%M:%S"),
            "window": f"{run['window_from'] or '…'} – {run['window_to'] or '…'}"
            if run["window_from"] or run["window_to"]
            else "all",
            "files": (run["song_files"] or 0) + (run["log_files"] or 0),
            "total_seconds": round(run["total_seconds"], 2),
            "error": (run["error"] or "")[:60],
        }
        rows.append([_cell(shown[name]) for name, _ in HISTORY_COLUMNS])
    return table(rows, [header for _, header in HISTORY_COLUMNS])


def _cell(value):
    return "" if value is None else value
