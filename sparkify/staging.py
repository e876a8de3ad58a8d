"""The local staging loader: JSON files → COPY … FROM STDIN into the staging tables.

Fields are mapped as Redshift's COPY maps them: the n-th JSONPaths entry fills the n-th
column of staging_events, and for staging_songs ('auto') each column takes the field of
the same name. Values are converted as COPY would convert them (a number where text is
expected loads as its text, empty strings load as NULL, long strings are truncated to
the column's byte width); anything COPY would refuse is rejected with its file, line
and reason instead of failing the load. Rows stream to PostgreSQL; no dataset is held
in memory.
"""

import json
import logging
import math
import multiprocessing
import os
import re
import sys
from collections import defaultdict, deque
from datetime import datetime, timedelta
from typing import NamedTuple

import sql_queries
from sparkify.copytext import COPY_ESCAPES, NULL, ChunkStream
from sparkify.errors import ConfigError
from sparkify.jsonfiles import Record, file_pieces, list_data_files, read_piece, read_records, read_whole
from sparkify.output import Progress

log = logging.getLogger("sparkify")

# The transform casts these text columns; refusing what the cast would refuse keeps one
# bad record from failing the whole transform.
CAST_IN_TRANSFORM = {"user_id": "integer"}

INT32 = (-(2**31), 2**31 - 1)
EPOCH = datetime(1970, 1, 1)
INTEGER_TEXT = re.compile(r"[+-]?\d+(\.0*)?")
# Work is cut into tasks of about this much input; larger datasets are parsed in
# parallel worker processes while PostgreSQL ingests.
TASK_BYTES = 4 * 1024 * 1024
TASK_FILES = 2000
PARALLEL_MIN_BYTES = 16 * 1024 * 1024


class BadValue(Exception):
    """A field whose value the staging column cannot hold."""


class Column(NamedTuple):
    name: str  # staging column
    source: str  # JSON field (or JSONPath) it comes from, for messages
    path: tuple  # keys/indexes to walk in the JSON object
    kind: str  # text | integer | float | timestamp
    width: int | None  # byte width of text columns
    required: bool


class Counters:
    """Per-dataset tallies for the run summary."""

    def __init__(self):
        self.files = 0
        self.read = 0
        self.loaded = 0
        self.rejected = 0
        self.truncated = 0
        self.repaired = 0
        self.nul_removed = 0
        self.decimal_integers = 0  # 7.0 or "7.0" loaded as 7
        self.empty_files = 0
        self.ignored = []  # files skipped for their extension
        self.outside_window = 0  # files skipped by --from/--to


def _kind(sql_type, column_name):
    if column_name in CAST_IN_TRANSFORM:
        return "integer_text"
    base = sql_type.split()[0].split("(")[0].upper()
    return {
        "INTEGER": "integer",
        "SMALLINT": "integer",
        "BIGINT": "integer",
        "DOUBLE": "float",
        "TIMESTAMP": "timestamp",
    }.get(base, "text")


def staging_columns(table, paths=None):
    """Column specs for what the data fills of a staging table (all but its source
    column); paths from a JSONPaths file, else 'auto'."""
    columns = table.copied_columns
    if paths is not None and len(paths) != len(columns):
        raise ConfigError(
            f"the JSONPaths file has {len(paths)} paths but {table.name} has "
            f"{len(columns)} columns; they are matched by position"
        )
    specs = []
    for index, (name, sql_type) in enumerate(columns):
        source, path = paths[index] if paths is not None else (name, (name,))
        specs.append(
            Column(
                name=name,
                source=source,
                path=path,
                kind=_kind(sql_type, name),
                width=sql_queries.varchar_width(sql_type),
                required="NOT NULL" in sql_type.upper(),
            )
        )
    return specs


JSONPATH_STEP = re.compile(r"""\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\.([A-Za-z_][\w]*)|\[(\d+)\]""")


def mixes_notations(paths):
    """Does a JSONPaths list mix bracket ($['a']) and dot ($.a) notation? Redshift refuses
    such a file (https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-json.html);
    the local loader reads it."""
    brackets = any("[" in text for text, _ in paths)
    dots = any(re.search(r"(^\$|\])\.", text) for text, _ in paths)
    return brackets and dots


def read_jsonpaths(path):
    """The (text, steps) pairs of a Redshift JSONPaths file."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            document = json.load(handle)
        expressions = document["jsonpaths"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"JSONPaths file {path} is not valid: {error}") from None
    return [(text, _parse_jsonpath(text, path)) for text in expressions]


def _parse_jsonpath(text, path):
    if not isinstance(text, str) or not text.startswith("$"):
        raise ConfigError(f"JSONPaths file {path}: {text!r} does not start with $")
    steps, pos = [], 1
    for match in JSONPATH_STEP.finditer(text, 1):
        if match.start() != pos:
            break
        single, double, dotted, index = match.groups()
        steps.append(
            int(index) if index is not None else next(s for s in (single, double, dotted) if s is not None)
        )
        pos = match.end()
    if pos != len(text) or not steps:
        raise ConfigError(f"JSONPaths file {path}: {text!r} is not a supported JSONPath")
    return tuple(steps)


def _lookup(obj, path):
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or step >= len(obj):
                return None
        elif not isinstance(obj, dict) or step not in obj:
            return None
        obj = obj[step]
    return obj


def repair_mojibake(text):
    """Undo UTF-8 that was decoded as Latin-1 and encoded again, as often as it was done.

    Only where unambiguous: every character fits in Latin-1 and its bytes form valid
    UTF-8 ("BjÃ\\x83Â¶rk" → "Björk"); any other text comes back unchanged.
    """
    if text.isascii():
        return text
    repaired = text
    while True:
        try:
            candidate = repaired.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return repaired
        if candidate == repaired:
            return repaired
        repaired = candidate


def _integer(value):
    if isinstance(value, bool):
        raise BadValue("is a boolean, not a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise BadValue(f"{value!r} is not a whole number")
        value = int(value)
    elif isinstance(value, str):
        if not INTEGER_TEXT.fullmatch(value.strip()):
            raise BadValue(f"{_short(value)} is not a whole number")
        value = int(float(value)) if "." in value else int(value)
    elif not isinstance(value, int):
        raise BadValue(f"is {_json_kind(value)}, not a whole number")
    return value


def _to_integer(value, column):
    value = _integer(value)
    if not INT32[0] <= value <= INT32[1]:
        raise BadValue(f"{value} is out of range for an INTEGER")
    return str(value)


def _to_integer_text(value, column):
    """userId: digits (a JSON number or a string), 0 … 2147483647, as the transform's CAST
    and the Redshift path's check (sql_queries.INVALID_USER_ID) take it."""
    if isinstance(value, str):
        if not value.strip():
            return None  # BLANKSASNULL / EMPTYASNULL: a logged-out event
        if not (value.isascii() and value.isdigit()):
            raise BadValue(f"{_short(value)} is not a whole number written in digits")
        number = int(value)
    elif type(value) is int:
        number = value
    else:
        raise BadValue(f"{_short(value)} is not a whole number written in digits")
    if not 0 <= number <= INT32[1]:
        raise BadValue(f"{_short(value)} is out of range (0 to {INT32[1]})")
    return str(number)


def _to_float(value, column):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadValue(f"is {_json_kind(value)}, not a number")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise BadValue(f"{_short(value)} is not a number") from None
    if not math.isfinite(number):
        raise BadValue(f"{_short(value)} is not a finite number")
    return repr(number)


def _to_timestamp(value, column):
    millis = _integer(value)
    try:
        moment = EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise BadValue(f"{millis} is out of range for epoch milliseconds") from None
    return moment.isoformat(sep=" ", timespec="milliseconds")


def _to_text(value, column):
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValue(f"{value!r} is not valid JSON text")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _written_as_decimal(value):
    return type(value) is float or (isinstance(value, str) and "." in value)


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _json_kind(value):
    return {dict: "an object", list: "an array", bool: "a boolean", str: "a string"}.get(
        type(value), "a number"
    )


CONVERTERS = {
    "integer": _to_integer,
    "integer_text": _to_integer_text,
    "float": _to_float,
    "timestamp": _to_timestamp,
    "text": _to_text,
}


class RowConverter:
    """Turns one JSON object into one line of COPY text, or raises BadValue.

    The values real data holds (plain ASCII text that fits, in-range integers, finite
    floats, epoch milliseconds) take a fast path, FAST_PATHS; anything else takes the
    general path (`_cell`), which defines the semantics. The fast paths of all columns
    are compiled into one function per table, so a row costs one call, not one per cell.
    """

    def __init__(self, columns, repair, counters):
        self.columns = columns
        self.repair = repair
        self.counters = counters
        namespace = {"general": [self._general(column) for column in columns], "NULL": NULL}
        namespace.update(FAST_PATH_HELPERS)
        exec(compile(self._row_function_source(), f"<{type(self).__name__}>", "exec"), namespace)
        self.convert = namespace["convert"]  # (obj, ending) -> COPY text line; raises BadValue

    def __call__(self, obj):
        return self.convert(obj)

    def _general(self, column):
        return lambda obj: self._cell(obj, column)

    def _row_function_source(self):
        lines = ["def convert(obj, ending='\\n'):", "    get = obj.get"]
        for index, column in enumerate(self.columns):
            cell = f"cell{index}"
            if len(column.path) != 1 or not isinstance(column.path[0], str):
                lines.append(f"    {cell} = general[{index}](obj)")
                continue
            test, text = FAST_PATHS[column.kind]
            width = f" <= {column.width}" if column.width else ""
            lines += [
                f"    value = get({column.path[0]!r})",
                f"    if {test.format(width=width)}:",
                f"        {cell} = {text}",
            ]
            if not column.required:
                lines += ["    elif value is None:", f"        {cell} = NULL"]
            lines += ["    else:", f"        {cell} = general[{index}](obj)"]
        cells = "\\t".join("{cell" + str(index) + "}" for index in range(len(self.columns)))
        lines.append(f'    return f"{cells}{{ending}}"')
        return "\n".join(lines) + "\n"

    def _cell(self, obj, column):
        raw = _lookup(obj, column.path)
        try:
            value = None if raw is None else CONVERTERS[column.kind](raw, column)
            if column.kind in ("integer", "timestamp") and _written_as_decimal(raw):
                self.counters.decimal_integers += 1
            if value is not None and column.kind == "text":
                value = self._clean_text(value, column)
        except BadValue as error:
            raise BadValue(f"field {column.source}: {error}") from None
        if value is None:
            if column.required:
                raise BadValue(f"field {column.source} is missing or empty, and is required")
            return NULL
        return value.translate(COPY_ESCAPES)

    def _clean_text(self, value, column):
        if "\x00" in value:
            value = value.replace("\x00", "")
            self.counters.nul_removed += 1
        if not value.strip():
            return None  # EMPTYASNULL / BLANKSASNULL
        if self.repair:
            repaired = repair_mojibake(value)
            if repaired != value:
                self.counters.repaired += 1
                value = repaired
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise BadValue(f"invalid Unicode (lone surrogate \\u{ord(value[error.start]):04x})") from None
        if column.width is not None and len(encoded) > column.width:
            value = encoded[: column.width].decode("utf-8", "ignore")  # TRUNCATECOLUMNS
            self.counters.truncated += 1
        return value


# Fast paths, per column kind: (test of `value`, the JSON field's value, and the COPY text
# when it passes). Exact types: bool and str subclasses take the general path. Text that
# passes needs no escaping (printable: no tab, newline, CR or NUL), no repair (ASCII) and
# no truncation, and is not blank.
FAST_PATHS = {
    "text": (
        'type(value) is str and value.isascii() and value.isprintable() and "\\\\" not in value'
        " and 0 < len(value){width} and not value[0].isspace()",
        "value",
    ),
    "integer": ("type(value) is int and -2147483648 <= value <= 2147483647", "str(value)"),
    "integer_text": (
        "type(value) is str and value.isdigit() and value.isascii() and len(value) < 10",
        "str(int(value))",
    ),
    "float": ("type(value) is float and value - value == 0.0", "repr(value)"),  # finite
    "timestamp": (
        "type(value) is int and 0 <= value < 253402300800000",
        "timestamp_text(value)",
    ),  # < year 10000
}
MILLIS_PER_DAY = 86_400_000
_day_prefixes = {}


def _timestamp_text(millis):
    """'YYYY-MM-DD HH:MM:SS.mmm' of non-negative epoch milliseconds."""
    days, millis = divmod(millis, MILLIS_PER_DAY)
    prefix = _day_prefixes.get(days)
    if prefix is None:
        prefix = _day_prefixes[days] = (EPOCH + timedelta(days=days)).strftime("%Y-%m-%d ")
    seconds, millis = divmod(millis, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


FAST_PATH_HELPERS = {"timestamp_text": _timestamp_text}


class Task(NamedTuple):
    """Files, or pieces of a large file, converted together by one worker."""

    pieces: list  # (path, shown name, start, end); end None: the whole file


class TaskResult(NamedTuple):
    copy_text: bytes
    counts: dict
    rejects: list  # (piece index, shown name, line within the piece, reason, raw)
    piece_lines: list  # (path, lines in the piece (0 for a whole file), records), one per piece


def plan_tasks(files, display_root, source_name=None):
    """Group (path, size) files, and pieces of large ones, into tasks of ~task_bytes input.

    Files are named in messages relative to the dataset folder's parent
    (log_data/2018/11/2018-11-01-events.json); source_name(path), if given, is the name
    written into each row's source column (the ledger's name of the file).
    """
    prefix = os.path.join(os.path.dirname(os.path.abspath(display_root)), "")
    task_bytes, task_files = TASK_BYTES, TASK_FILES
    task, task_size = [], 0
    for path, size in files:
        shown = path[len(prefix) :] if path.startswith(prefix) else path
        source = source_name(path) if source_name else None
        for start, end in file_pieces(path, size, task_bytes):
            task.append((path, shown, start, end, source))
            task_size += (end or size) - start
            if task_size >= task_bytes or len(task) >= task_files:
                yield Task(task)
                task, task_size = [], 0
    if task:
        yield Task(task)


def convert_task(task, columns, repair):
    """COPY text for every loadable record of a task; the rest become rejects."""
    counters = Counters()
    convert = RowConverter(columns, repair, counters).convert
    lines, rejects, piece_lines = [], [], []
    add_line = lines.append
    for index, (path, shown, start, end, source) in enumerate(task.pieces):
        # The source column comes last: every row of the file ends with its name.
        ending = "\n" if source is None else "\t" + source.translate(COPY_ESCAPES) + "\n"
        records_before = len(lines) + len(rejects)
        if start == 0:
            counters.files += 1
        data = read_whole(path) if end is None else read_piece(path, start, end)
        piece_lines.append([path, 0 if end is None else data.count(b"\n"), 0])
        for item in read_records(path, data):
            if type(item) is Record:  # noqa: E721 - exact type, on the hot path
                try:
                    add_line(convert(item.value, ending))
                    continue
                except BadValue as error:
                    reason, raw = str(error), _record_excerpt(item.value)
            else:
                reason, raw = item.reason, item.raw
            rejects.append((index, shown, item.line, reason, raw))
        piece_lines[-1][2] = len(lines) + len(rejects) - records_before
        if piece_lines[-1][2] == 0 and end is None:
            counters.empty_files += 1
    counters.loaded, counters.rejected = len(lines), len(rejects)
    counters.read = counters.loaded + counters.rejected
    copy_text = "".join(lines).encode("utf-8")
    return TaskResult(copy_text, vars(counters), rejects, piece_lines)


def _record_excerpt(value):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"


def converted_results(tasks, columns, repair, workers):
    """TaskResults in task order; with workers > 1, converted in parallel processes.

    At most 2 tasks per worker are in flight, so memory stays flat however large the
    dataset, while PostgreSQL ingests one chunk and the workers parse the next.
    """
    if workers <= 1:
        for task in tasks:
            yield convert_task(task, columns, repair)
        return
    context = multiprocessing.get_context("forkserver" if sys.platform != "linux" else "fork")
    with context.Pool(workers) as pool:
        in_flight = deque()
        for task in tasks:
            in_flight.append(pool.apply_async(convert_task, (task, columns, repair)))
            if len(in_flight) >= 2 * workers:
                yield in_flight.popleft().get()
        while in_flight:
            yield in_flight.popleft().get()


def stage_dataset(
    cursor,
    dataset,
    table,
    root,
    columns,
    window,
    repair,
    rejects,
    workers=1,
    choose=lambda files: files,
    source_name=None,
):
    """Load one staging table, just emptied by TRUNCATE in this transaction, from the
    files under root that choose(listing) keeps (the ledger's new and changed files);
    source_name(path): what its source column holds for the file's rows. Returns its
    Counters, with .listing and .records (path -> records read)."""
    listing = list_data_files(root, window)
    counters = Counters()
    counters.ignored, counters.outside_window = listing.ignored, listing.outside_window
    counters.listing = listing
    listing = listing._replace(files=choose(listing))
    total_bytes = sum(size for _, size in listing.files)
    workers = workers if total_bytes >= PARALLEL_MIN_BYTES else 1
    tasks = plan_tasks(listing.files, root, source_name)
    results = converted_results(tasks, columns, repair, workers)

    progress = Progress(table.name, len(listing.files))
    lines_before = defaultdict(int)  # per split file: lines in the pieces already merged
    counters.records = defaultdict(int)  # per file: records read

    def chunks():
        for result in results:
            for name, value in result.counts.items():
                if isinstance(value, int):
                    setattr(counters, name, getattr(counters, name) + value)
            for index, (path, lines, records) in enumerate(result.piece_lines):
                for piece, shown, line, reason, raw in result.rejects:
                    if piece == index:
                        rejects.add(dataset, shown, lines_before[path] + line, reason, raw)
                lines_before[path] += lines
                counters.records[path] += records
            progress.update(counters.files, counters.loaded)
            if result.copy_text:
                yield result.copy_text

    copy_sql = sql_queries.copy_from_stdin_sql(table, freeze=True)
    log.debug("%s", copy_sql)
    try:
        cursor.copy_expert(copy_sql, ChunkStream(chunks()))
    finally:
        progress.done()
    cursor.execute(sql_queries.analyze_sql(table))
    return counters
