"""The local staging loader: JSON files → COPY … FROM STDIN into the staging tables.

Fields are mapped as Redshift's COPY maps them: the n-th JSONPaths entry fills the n-th
column of staging_events, and for staging_songs ('auto') each column takes the field of
the same name. Values are converted as COPY would convert them (a number where text is
expected loads as its text, empty strings load as NULL, long strings are truncated to
the column's byte width); anything COPY would refuse is rejected with its file, line
and reason instead of failing the load. Rows stream to PostgreSQL; no dataset is held
in memory.
"""

import io
import json
import math
import re
import tempfile
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import sql_queries
from sparkify.errors import ConfigError
from sparkify.jsonfiles import Record, list_data_files, read_records

# The transform casts these text columns; refusing what the cast would refuse keeps one
# bad record from failing the whole transform.
CAST_IN_TRANSFORM = {"user_id": "integer"}

INT32 = (-(2**31), 2**31 - 1)
EPOCH = datetime(1970, 1, 1)
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"
INTEGER_TEXT = re.compile(r"[+-]?\d+(\.0*)?")
ROWS_PER_CHUNK = 2000


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
    """Column specs for a staging table; paths from a JSONPaths file, else 'auto'."""
    if paths is not None and len(paths) != len(table.columns):
        raise ConfigError(
            f"the JSONPaths file has {len(paths)} paths but {table.name} has "
            f"{len(table.columns)} columns; they are matched by position"
        )
    specs = []
    for index, (name, sql_type) in enumerate(table.columns):
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
    if isinstance(value, str) and not value.strip():
        return None
    return str(_integer(value))


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
    """Turns one JSON object into one line of COPY text, or raises BadValue."""

    def __init__(self, columns, repair, counters):
        self.columns = columns
        self.repair = repair
        self.counters = counters

    def __call__(self, obj):
        return "\t".join(self._cell(obj, column) for column in self.columns) + "\n"

    def _cell(self, obj, column):
        raw = _lookup(obj, column.path)
        try:
            value = None if raw is None else CONVERTERS[column.kind](raw, column)
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


class RejectSink:
    """Rejected records, spooled to a temporary file in COPY text format."""

    def __init__(self, run_id, rejected_at):
        self.prefix = f"{run_id}\t{rejected_at}\t"
        self.spool = io.TextIOWrapper(
            tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024),
            encoding="utf-8",
            errors="backslashreplace",  # a lone surrogate in a rejected record must not crash
            newline="\n",
        )
        self.count = 0
        self.first = []  # the first few, for the run's output

    def add(self, dataset, file, line, reason, raw):
        self.count += 1
        if len(self.first) < 10:
            self.first.append(f"{file}:{line}: {reason}")
        cells = [dataset, str(file), str(line), reason[:1024], (raw or "")[:1024]]
        cleaned = [cell.replace("\x00", "").translate(COPY_ESCAPES) for cell in cells]
        self.spool.write(self.prefix + "\t".join(cleaned) + "\n")

    def copy_into(self, cursor):
        self.spool.flush()
        self.spool.seek(0)
        cursor.copy_expert(sql_queries.copy_from_stdin_sql(sql_queries.LOAD_REJECTS), self.spool)

    def close(self):
        self.spool.close()


def converted_lines(files, convert, counters, rejects, dataset, display_root):
    """COPY lines for every loadable record of the files; the rest go to rejects."""
    for path in files:
        counters.files += 1
        shown = _display_path(path, display_root)
        read_before = counters.read
        for item in read_records(path):
            counters.read += 1
            if isinstance(item, Record):
                try:
                    line = convert(item.value)
                except BadValue as error:
                    rejects.add(dataset, shown, item.line, str(error), _record_excerpt(item.value))
                    counters.rejected += 1
                    continue
                counters.loaded += 1
                yield line
            else:
                rejects.add(dataset, shown, item.line, item.reason, item.raw)
                counters.rejected += 1
        if counters.read == read_before:
            counters.empty_files += 1


def _display_path(path, root):
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _record_excerpt(value):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"


class LineStream(io.RawIOBase):
    """A read-only file over an iterator of text lines, for cursor.copy_expert."""

    def __init__(self, lines):
        self._lines = lines
        self._buffer = b""

    def readable(self):
        return True

    def readinto(self, target):
        while len(self._buffer) < len(target):
            chunk = "".join(islice(self._lines, ROWS_PER_CHUNK))
            if not chunk:
                break
            self._buffer += chunk.encode("utf-8")
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def copy_lines(cursor, table, lines):
    """Stream COPY text lines into a table; returns nothing, counts are kept by the caller."""
    stream = io.BufferedReader(LineStream(iter(lines)), buffer_size=256 * 1024)
    cursor.copy_expert(sql_queries.copy_from_stdin_sql(table), stream, size=256 * 1024)


def stage_dataset(cursor, dataset, table, root, columns, window, repair, rejects):
    """Load one staging table from the files under root; returns its Counters."""
    root = Path(root)
    listing = list_data_files(root, window)
    counters = Counters()
    counters.ignored, counters.outside_window = listing.ignored, listing.outside_window
    convert = RowConverter(columns, repair, counters)
    lines = converted_lines(listing.files, convert, counters, rejects, dataset, root)
    copy_lines(cursor, table, lines)
    return counters
