"""Run output: one logging line per step, secrets masked, a summary table at the end."""

import logging
import sys
import time
from contextlib import contextmanager

LOGGER_NAME = "sparkify"
HANDLER_NAME = "sparkify-console"
MASK = "********"


class MaskSecrets(logging.Filter):
    """Replaces every known secret value in a log record's final text."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record):
        message = record.getMessage()
        for secret in self.secrets:
            message = message.replace(secret, MASK)
        record.msg, record.args = message, None
        return True


class ConsoleHandler(logging.StreamHandler):
    """stdout handler that goes quiet when the reader has gone (`etl.py | head`)."""

    def handleError(self, record):  # noqa: N802 - logging's name
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            return
        super().handleError(record)


def configure_logging(quiet=False, verbose=False):
    """Log to stdout (a notebook shows it); calling again replaces the previous handler."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if handler.get_name() == HANDLER_NAME:
            logger.removeHandler(handler)
    handler = ConsoleHandler(sys.stdout)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(MaskSecrets(_known_secrets))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    return logger


_known_secrets = []


def mask_secrets(secrets):
    """Add secrets (known only after the config is read) to the console handler's mask."""
    _known_secrets[:] = secrets
    logger = logging.getLogger(LOGGER_NAME)
    for handler in logger.handlers:
        if handler.get_name() == HANDLER_NAME:
            handler.filters = [MaskSecrets(secrets)]


def add_secret(secret):
    """Mask one more value, learnt during the run (a temporary password)."""
    mask_secrets([*_known_secrets, secret])


def masked(text):
    """text with every known secret replaced, for output that does not go through logging."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def table(rows, headers):
    """Aligned plain-text table: numbers right-aligned, text left-aligned."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(headers))]

    def line(values):
        return "  ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


class Progress:
    """Progress of a long step: one rewritten line on a terminal, a plain log line every
    PLAIN_INTERVAL seconds otherwise (CI logs, notebooks); nothing with --quiet."""

    TERMINAL_INTERVAL = 0.2
    PLAIN_INTERVAL = 10.0

    def __init__(self, label, total_files, stream=None):
        self.label, self.total_files = label, total_files
        self.stream = stream or sys.stdout
        logger = logging.getLogger(LOGGER_NAME)
        self.enabled = logger.isEnabledFor(logging.INFO)
        self.terminal = self.enabled and getattr(self.stream, "isatty", lambda: False)()
        self.started = self.last = time.monotonic()
        self.shown = False

    def update(self, files, rows):
        if not self.enabled:
            return
        now = time.monotonic()
        interval = self.TERMINAL_INTERVAL if self.terminal else self.PLAIN_INTERVAL
        if now - self.last < interval:
            return
        self.last = now
        elapsed = now - self.started
        text = (
            f"{self.label:15} {files:,} of {self.total_files:,} files, {rows:,} rows, "
            f"{rows / elapsed:,.0f} rows/s, {elapsed:.0f} s"
        )
        if self.terminal:
            self.stream.write("\r" + text + "\x1b[K")
            self.stream.flush()
            self.shown = True
        else:
            logging.getLogger(LOGGER_NAME).info("%s", text)

    def done(self):
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


@contextmanager
def timed(seconds_by_phase, phase):
    """Adds the block's wall-clock seconds to seconds_by_phase[phase]; yields a reader."""
    started = time.perf_counter()
    yield lambda: seconds_by_phase[phase]
    seconds_by_phase[phase] = seconds_by_phase.get(phase, 0.0) + time.perf_counter() - started


def first_and_more(names):
    """'a' or 'a and 2 more': the first of some names, and how many others."""
    return names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else "")
