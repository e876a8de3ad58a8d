"""The run's rejects: every record neither engine loaded, with its file, line and reason."""

import io
import tempfile

import psycopg2.extras

import sql_queries
from sparkify.copytext import COPY_ESCAPES, NULL, copy_text_cells, fit


class RejectSink:
    """Rejected records, spooled to a temporary file in COPY text format, then written
    to load_rejects after the run (committed or not): COPY FROM STDIN where the engine
    takes it, multi-row INSERTs on Redshift, which has no COPY from a client."""

    INSERT_PAGE_ROWS = 500

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
        """line None: the engine cannot say (a row Redshift's COPY loaded)."""
        self.count += 1
        if len(self.first) < 10:
            self.first.append(f"{file}:{line}: {reason}" if line is not None else f"{file}: {reason}")
        cells = [dataset, fit(str(file)), fit(reason), fit(raw or "")]
        dataset, file, reason, raw = (cell.replace("\x00", "").translate(COPY_ESCAPES) for cell in cells)
        line = NULL if line is None else str(line)
        self.spool.write(self.prefix + "\t".join((dataset, file, line, reason, raw)) + "\n")

    def copy_into(self, cursor, engine=sql_queries.POSTGRES):
        self.spool.flush()
        self.spool.seek(0)
        if engine.copy_from_stdin:
            cursor.copy_expert(sql_queries.copy_from_stdin_sql(sql_queries.LOAD_REJECTS), self.spool)
            return
        psycopg2.extras.execute_values(
            cursor,
            sql_queries.insert_values_sql(sql_queries.LOAD_REJECTS),
            (copy_text_cells(line) for line in self.spool),
            page_size=self.INSERT_PAGE_ROWS,
        )

    def close(self):
        self.spool.close()
