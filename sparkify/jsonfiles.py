"""Find the data files and read JSON objects from them, one record at a time.

A file holds any number of JSON objects: one per line (JSON lines), pretty-printed
over several lines, or several on one line, as Redshift's COPY accepts. Every piece of
input becomes either a `Record` or a `Reject` naming its line and the problem, so
records read = loaded + rejected holds by construction.
"""

import gzip
import io
import json
import os
import re
import zlib
from datetime import date
from typing import NamedTuple

DATA_SUFFIXES = (".json", ".json.gz")
BOM = b"\xef\xbb\xbf"
MAX_RECORD_CHARS = 4 * 1024 * 1024  # Redshift's limit for one JSON object: 4 MB
EXCERPT_CHARS = 200
DATE_IN_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})")

_decoder = json.JSONDecoder()
_scan_value = _decoder.scan_once  # (value, end) of the JSON value at an index
LINE_ENDINGS = ("", "\n", "\r\n")


class Record(NamedTuple):
    line: int
    value: dict


class Reject(NamedTuple):
    line: int
    reason: str
    raw: str


class FileListing(NamedTuple):
    files: list  # data files to load, sorted
    ignored: list  # files skipped because of their extension
    outside_window: int  # data files skipped by --from/--to
    modified: dict  # path -> modification time in nanoseconds, of the data files


def list_data_files(root, window=None):
    """Data files under root (a folder or one file), optionally only those of some days.

    Returns sorted (path, size) pairs. window is (first_day, last_day), either may be
    None; a file belongs to the day in its name (log_data/2018/11/2018-11-05-events.json).
    Without a day in the name it is outside any window.
    """
    files, ignored, outside, modified = [], [], 0, {}
    for path, size, mtime_ns in _walk(str(root)):
        name = os.path.basename(path)
        if not name.endswith(DATA_SUFFIXES):
            ignored.append(path)
        elif window and window != (None, None) and not in_window(name, window):
            outside += 1
        else:
            files.append((path, size))
            modified[path] = mtime_ns
    return FileListing(files, ignored, outside, modified)


def _walk(root):
    """(path, size, mtime_ns) of every file under root, sorted; os.scandir keeps 100,000
    files fast."""
    if os.path.isfile(root):
        stat = os.stat(root)
        return [(root, stat.st_size, stat.st_mtime_ns)]
    found = []
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    stat = entry.stat()
                    found.append((entry.path, stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def day_in_name(name):
    match = DATE_IN_NAME.search(name)
    if not match:
        return None
    try:
        return date(*map(int, match.groups()))
    except ValueError:
        return None


def in_window(name, window):
    day = day_in_name(name)
    first, last = window
    return day is not None and (first is None or day >= first) and (last is None or day <= last)


def read_records(path, data=None):
    """Yield a Record or a Reject for every JSON value (or unreadable piece) of a file.

    data: the file's bytes (see `read_whole`), or those of one piece of a large plain
    file (see `file_pieces`), read by the caller; line numbers then count from the
    piece's first line.
    """
    line_no = 0
    if data is not None and data.startswith(b"{"):
        whole = _object_or_none(data)  # a file (or piece) that is one object: a song file
        if whole is not None:
            yield Record(1, whole)
            return
    try:
        if data is not None:
            handle = io.BytesIO(data)
        else:
            handle = (gzip.open if str(path).endswith(".gz") else open)(path, "rb")
        with handle:
            reader = _ObjectReader()
            for line_no, raw in enumerate(handle, start=1):
                if line_no == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM) :]
                if not reader.pending:  # the common line, one whole object: parsed here
                    value = _object_or_none(raw)
                    if value is not None:
                        yield Record(line_no, value)
                        continue
                yield from reader.feed(raw, line_no)  # anything else, and every error
            yield from reader.finish()
    except (OSError, EOFError, zlib.error) as error:
        yield Reject(line_no + 1, f"file cannot be read past this point: {error}", "")


def _object_or_none(raw):
    """The JSON object a line (or a whole file) holds alone, or None: the line then takes
    the general path, which reports any problem. The decoder's scanner is called directly:
    json.loads costs a fifth more per line."""
    try:
        text = raw.decode("utf-8")
        value, end = _scan_value(text, 0)
    except (ValueError, RecursionError, StopIteration):  # UnicodeDecodeError, JSONDecodeError
        return None
    if type(value) is not dict or text[end:] not in LINE_ENDINGS:  # noqa: E721 - exact type
        return None
    return value


def read_whole(path):
    """The bytes of a plain file, read with two system calls (a buffered file object costs
    as much again on a small file); None for a gzip file or one that cannot be read,
    which read_records then reads and reports itself."""
    if str(path).endswith(".gz"):
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(fd)
    except OSError:
        return None
    return b"".join(chunks)


def read_piece(path, start, end):
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read(end - start)


def file_pieces(path, size, piece_bytes):
    """(start, end) byte ranges of a plain file, cut where a line starts with '{'; end
    None means the whole file.

    Large JSON-lines files are converted in parallel pieces. A cut is made only before a
    line that opens a top-level object, so no record is split (pretty-printed objects
    indent their inner lines). Gzip files are not split. Only a little past each cut
    point is read here.
    """
    if str(path).endswith(".gz") or size <= piece_bytes:
        return [(0, None)]
    pieces, start = [], 0
    with open(path, "rb") as handle:
        while start + piece_bytes < size:
            cut = _next_object_start(handle, start + piece_bytes)
            if cut is None:
                break
            pieces.append((start, cut))
            start = cut
    pieces.append((start, size))
    return pieces


def _next_object_start(handle, position, window=1 << 16):
    """Offset of the first line starting with '{' after position, or None."""
    handle.seek(position)
    carry = b""
    while True:
        block = handle.read(window)
        if not block:
            return None
        found = (carry + block).find(b"\n{")
        if found >= 0:
            return position - len(carry) + found + 1
        position += len(block)
        carry = block[-1:]


def _excerpt(text):
    text = text.strip()
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


class _ObjectReader:
    """Turns lines into records; holds back lines of an object not yet closed."""

    def __init__(self):
        self.pending = []  # lines of an object that spans several lines
        self.pending_start = 0
        self.pending_chars = 0

    def feed(self, raw, line_no):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield from self._reject_pending("JSON object interrupted by an undecodable line")
            yield Reject(
                line_no,
                f"invalid UTF-8 at byte {error.start} of the line",
                _excerpt(raw.decode("utf-8", "replace")),
            )
            return
        yield from self._refeed(text, line_no)

    def finish(self):
        yield from self._reject_pending("truncated: JSON object not closed at end of file")

    def _parse_start(self, text, line_no):
        stripped = text.strip()
        if not stripped:
            return
        try:
            yield _as_record(json.loads(stripped), line_no, stripped)
            return
        except json.JSONDecodeError:
            pass
        except RecursionError:
            yield Reject(line_no, "JSON nested too deeply", _excerpt(stripped))
            return
        yield from self._scan(text, line_no)

    def _parse_pending(self):
        if self.pending_chars > MAX_RECORD_CHARS:
            yield from self._reject_pending(f"JSON object larger than {MAX_RECORD_CHARS} characters")
            return
        buffer, start = "".join(self.pending), self.pending_start
        outcome = list(_scan_buffer(buffer, start))
        if outcome and isinstance(outcome[-1], _Incomplete):
            if len(outcome) > 1:  # objects closed before the open one: keep only its text
                self._keep(outcome[-1].text, outcome[-1].line)
            yield from outcome[:-1]
            return
        if outcome and isinstance(outcome[0], Reject) and len(self.pending) > 1:
            # The open object is broken. Report its first line alone and read the lines
            # after it afresh: a JSON line following a cut-off one must not be lost.
            first, following = self.pending[0], self.pending[1:]
            self._clear()
            yield Reject(start, "malformed JSON: object not closed before the next line", _excerpt(first))
            for offset, text in enumerate(following, start=1):
                yield from self._refeed(text, start + offset)
            return
        self._clear()
        yield from outcome

    def _refeed(self, text, line_no):
        if not self.pending:
            yield from self._parse_start(text, line_no)
            return
        self.pending.append(text)
        self.pending_chars += len(text)
        yield from self._parse_pending()

    def _scan(self, text, line_no):
        outcome = list(_scan_buffer(text, line_no))
        if outcome and isinstance(outcome[-1], _Incomplete):
            self._keep(outcome[-1].text, outcome[-1].line)
            outcome.pop()
        yield from outcome

    def _keep(self, text, line):
        self.pending = [text]
        self.pending_start = line
        self.pending_chars = len(text)

    def _clear(self):
        self.pending, self.pending_chars = [], 0

    def _reject_pending(self, reason):
        if self.pending:
            yield Reject(self.pending_start, reason, _excerpt("".join(self.pending)))
        self._clear()


class _Incomplete(NamedTuple):
    text: str
    line: int


def _scan_buffer(buffer, first_line):
    """Yield each JSON value in buffer; an unfinished last value comes back as _Incomplete."""
    pos, end = 0, len(buffer)
    while True:
        while pos < end and buffer[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return
        line = first_line + buffer.count("\n", 0, pos)
        try:
            value, next_pos = _decoder.raw_decode(buffer, pos)
        except json.JSONDecodeError as error:
            if error.pos >= end:
                yield _Incomplete(buffer[pos:], line)
            else:
                yield Reject(
                    line, f"malformed JSON: {error.msg} (column {error.colno})", _excerpt(buffer[pos:])
                )
            return
        except RecursionError:
            yield Reject(line, "JSON nested too deeply", _excerpt(buffer[pos:]))
            return
        yield _as_record(value, line, buffer[pos:next_pos])
        pos = next_pos


def _as_record(value, line, text):
    if isinstance(value, dict):
        return Record(line, value)
    kind = {list: "an array", str: "a string", bool: "a boolean"}.get(type(value))
    kind = kind or ("null" if value is None else "a number")
    return Reject(line, f"expected a JSON object, found {kind}", _excerpt(text))
