"""Small named exceptions. main() turns each into one line and an exit code."""


class SparkifyError(Exception):
    """Base class: an error the user can act on, printed without a traceback."""

    exit_code = 1


class ConfigError(SparkifyError):
    """A missing, malformed or placeholder config value: a user mistake."""

    exit_code = 2


class UsageError(SparkifyError):
    """A bad command-line value or a path that does not exist: a user mistake."""

    exit_code = 2


class DataError(SparkifyError):
    """Input records could not be loaded (more rejects than MAXERROR allows)."""


class ChecksFailed(SparkifyError):
    """One or more data quality checks did not return the expected result."""


class WarehouseBusy(SparkifyError):
    """Another etl.py run holds the warehouse lock."""


class DatabaseError(SparkifyError):
    """The database refused or lost the connection, or a statement failed."""


class TablesOwnedByOthers(SparkifyError):
    """Redshift tables that belong to another user than the one connected."""

    exit_code = 2


class NotAllowed(SparkifyError):
    """The database refused this user a read or a write (README "Who can do what")."""

    exit_code = 2
