"""PostgreSQL's COPY text format, written and read back: the local loader's rows, the
ledger's rows and the run's rejects all travel in it."""

import re

COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"
COPY_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
COPY_UNESCAPE = re.compile(r"\\[\\tnr]")


def copy_text_line(cells):
    """One row in COPY text format (None is NULL). Only text can hold a character COPY
    must escape, so numbers are not searched."""
    return (
        "\t".join(
            NULL if cell is None else cell.translate(COPY_ESCAPES) if isinstance(cell, str) else str(cell)
            for cell in cells
        )
        + "\n"
    )


def copy_text_cells(line):
    """The cells of one COPY text line, as copy_text_line wrote them (NULL is None)."""
    return tuple(
        None if cell == NULL else COPY_UNESCAPE.sub(lambda m: COPY_UNESCAPES[m.group(0)], cell)
        for cell in line.rstrip("\n").split("\t")
    )


def fit(text, width=1024):
    """At most `width` bytes of UTF-8, as load_rejects' VARCHAR(1024) holds on both engines
    (Redshift counts bytes, and an INSERT of a longer value fails)."""
    encoded = text.encode("utf-8", "backslashreplace")
    return text if len(encoded) <= width else encoded[:width].decode("utf-8", "ignore")


class ChunkStream:
    """A read-only file over an iterator of byte chunks, for cursor.copy_expert.

    read() hands over one whole chunk at a time (psycopg2 sends what read returns).
    """

    def __init__(self, chunks):
        self._chunks = chunks

    def read(self, size=-1):
        return next(self._chunks, b"")
