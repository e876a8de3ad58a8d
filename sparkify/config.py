"""dwh.cfg: every key, its default, its environment override and its check, in one place.

Any key can be overridden by an environment variable named SPARKIFY_<SECTION>_<KEY>,
for example SPARKIFY_CLUSTER_DB_PASSWORD, so no password needs to sit in a file.
Only the keys the chosen TARGET needs are required and checked.
"""

import configparser
import getpass
import os
import re
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

import psycopg2
from psycopg2.extensions import parse_dsn

from sparkify.datasets import DATASETS, SOURCE_KEYS
from sparkify.engines import ENGINES, TARGETS
from sparkify.engines import POSTGRES as _POSTGRES
from sparkify.engines import REDSHIFT as _REDSHIFT
from sparkify.errors import ConfigError
from sql_queries import STAR_TABLES

# The targets by name, for the keys each one needs (the engines say what each one is).
LOCAL = _POSTGRES.target
REDSHIFT = _REDSHIFT.target

S3_URL = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*()/=+\-]*)?")
IAM_ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/\-]{1,512}")
AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
PLACEHOLDER = re.compile(r"<[^<>]*>")
ENDPOINT_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d+)?/?")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


class Key(NamedTuple):
    section: str
    name: str
    default: str | None  # None: required when the target needs it
    targets: tuple  # the targets that read this key
    secret: bool = False

    @property
    def env_var(self):
        return f"SPARKIFY_{self.section}_{self.name}"

    @property
    def label(self):
        return f"[{self.section}] {self.name}"


KEYS = (
    Key("ETL", "TARGET", LOCAL, TARGETS),
    Key("ETL", "MAXERROR", "0", TARGETS),
    Key("ETL", "REPAIR_MOJIBAKE", "true", (LOCAL,)),
    Key("ETL", "LOCK_TIMEOUT_SECONDS", "60", TARGETS),
    # A run stops, changing nothing, when more than this share of a dataset's loaded
    # files is gone from the source (a wrong path, an emptied folder): --allow-retract.
    Key("ETL", "RETRACT_LIMIT_PERCENT", "10", TARGETS),
    Key("LOCAL", "DSN", None, (LOCAL,), secret=True),
    # A superuser's DSN, read only when making the roles
    # (python -m sparkify.roles); the DSN above is the loader's.
    Key("LOCAL", "ADMIN_DSN", "", (LOCAL,), secret=True),
    Key("CLUSTER", "HOST", None, (REDSHIFT,)),
    Key("CLUSTER", "DB_NAME", None, (REDSHIFT,)),
    Key("CLUSTER", "DB_USER", None, (REDSHIFT,)),
    # Empty: connect with temporary credentials from redshift:GetClusterCredentials.
    Key("CLUSTER", "DB_PASSWORD", "", (REDSHIFT,), secret=True),
    Key("CLUSTER", "DB_PORT", "5439", (REDSHIFT,)),
    # For temporary credentials: the cluster's region when the host does not name it
    # (a custom domain); it can differ from [S3] REGION.
    Key("CLUSTER", "REGION", "", (REDSHIFT,)),
    # true | false; empty: Serverless when the host is a *.redshift-serverless.* endpoint.
    Key("CLUSTER", "SERVERLESS", "", (REDSHIFT,)),
    Key("IAM_ROLE", "ARN", None, (REDSHIFT,)),
    *(Key("S3", name, None, TARGETS) for name in SOURCE_KEYS),
    Key("S3", "REGION", "us-west-2", TARGETS),
    # TARGET = local reading s3:// sources: no credentials (public buckets such as
    # udacity-dend), and an endpoint for S3-compatible stores (else AWS_ENDPOINT_URL).
    Key("S3", "ANONYMOUS", "false", (LOCAL,)),
    Key("S3", "ENDPOINT_URL", "", (LOCAL,)),
    # TARGET = redshift: where each run writes the manifests of exactly the files it
    # loads (a bucket of yours in REGION; aws_setup.py create makes one), and whether to
    # pack the many small song objects into a few gzip files there first.
    Key("S3", "STAGING_PREFIX", "", (REDSHIFT,)),
    Key("S3", "PACK_SONGS", "false", (REDSHIFT,)),
    # Who may do what (README "Who can do what"): the user this config connects as is the
    # loader and owns the tables; create_tables.py grants SELECT on ANALYST_TABLES (star
    # tables only) to ANALYSTS, and on the star, history, ledger and rejects to OPERATORS.
    # The users made members of each role by the admin (aws_setup.py roles, python -m
    # sparkify.roles), comma-separated.
    Key("ROLES", "ANALYSTS", "sparkify_analysts", TARGETS),
    Key("ROLES", "ANALYST_TABLES", ", ".join(table.name for table in STAR_TABLES), TARGETS),
    Key("ROLES", "OPERATORS", "sparkify_operators", TARGETS),
    Key("ROLES", "ANALYST_USERS", "", TARGETS),
    Key("ROLES", "OPERATOR_USERS", "", TARGETS),
)
KEYS_BY_LABEL = {(key.section, key.name): key for key in KEYS}
BOOLEAN_KEYS = (
    ("ETL", "REPAIR_MOJIBAKE"),
    ("S3", "ANONYMOUS"),
    ("S3", "PACK_SONGS"),
    ("CLUSTER", "SERVERLESS"),
)
CHECK_SECTION_PREFIX = "CHECK "
# A check is one read-only query: it starts with SELECT or WITH and has no second statement.
CHECK_QUERY = re.compile(r"(?is)\s*(select|with)\b[^;]*;?\s*")


class UserCheck(NamedTuple):
    """A data quality check from a [CHECK <name>] section: SQL and the expected result.
    (The built-in checks take this shape too, with the run's query parameters.)"""

    name: str
    sql: str
    expected: str
    parameters: dict | None = None  # never for a user's check: its SQL may hold a %


class Config:
    """Validated settings for one run. Values are read by section and key."""

    def __init__(self, path, values, user_checks):
        self.path = path
        self._values = values
        self.user_checks = user_checks

    def get(self, section, name):
        return self._values.get((section, name))

    @property
    def target(self):
        return self.get("ETL", "TARGET")

    @property
    def engine(self):
        """The target's capabilities (sparkify.engines)."""
        return ENGINES[self.target]

    def flag(self, section, name):
        return self.get(section, name) in TRUE_WORDS

    @property
    def max_errors(self):
        return int(self.get("ETL", "MAXERROR"))

    @property
    def repair_mojibake(self):
        return self.flag("ETL", "REPAIR_MOJIBAKE")

    @property
    def lock_timeout_seconds(self):
        return int(self.get("ETL", "LOCK_TIMEOUT_SECONDS"))

    @property
    def retract_limit_percent(self):
        return int(self.get("ETL", "RETRACT_LIMIT_PERCENT"))

    @property
    def loader(self):
        """The user this config connects as: the loader, who owns the tables."""
        if self.engine.reads_local_folders:
            return (
                parse_dsn(self.get("LOCAL", "DSN")).get("user")
                or os.environ.get("PGUSER")
                or getpass.getuser()
            )
        return self.get("CLUSTER", "DB_USER")

    @property
    def loader_password(self):
        """The loader's password as this config gives it, or None (temporary credentials)."""
        if self.engine.reads_local_folders:
            return parse_dsn(self.get("LOCAL", "DSN")).get("password")
        return self.get("CLUSTER", "DB_PASSWORD") or None

    @property
    def analysts(self):
        return self.get("ROLES", "ANALYSTS")

    @property
    def operators(self):
        return self.get("ROLES", "OPERATORS")

    @property
    def analyst_tables(self):
        return names_of(self.get("ROLES", "ANALYST_TABLES"))

    def members(self, role_key):
        """The users [ROLES] ANALYST_USERS or OPERATOR_USERS names."""
        return names_of(self.get("ROLES", role_key))

    def secrets(self):
        """Every secret value of this config, to be masked in any output."""
        found = [self.get(key.section, key.name) for key in KEYS if key.secret]
        found += dsn_passwords(self.get("LOCAL", "DSN")) + dsn_passwords(self.get("LOCAL", "ADMIN_DSN"))
        found += [os.environ.get(name) for name in AWS_SECRET_ENV_VARS]
        return [value for value in found if value]


AWS_SECRET_ENV_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD")


URI_DSN = re.compile(r"postgres(?:ql)?://", re.IGNORECASE)
# A key/value password as written: 'quoted' (\' and \\ escaped) or bare up to a space.
WRITTEN_PASSWORD = re.compile(r"(?<!\S)password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|((?:[^\s\\]|\\.)+))")
URI_USER_PASSWORD = re.compile(r"postgres(?:ql)?://[^@/:]*:([^@/]*)@", re.IGNORECASE)


def dsn_passwords(dsn):
    """The password of a libpq DSN as libpq reads it (unquoted, unescaped, percent-decoded)
    and as it is written, so that output masks it in either form."""
    if not dsn:
        return []
    written = _written_uri_passwords(dsn) if URI_DSN.match(dsn) else _written_keyvalue_passwords(dsn)
    return [password for password in dict.fromkeys([_parsed_password(dsn), *written]) if password]


def _parsed_password(dsn):
    try:
        return parse_dsn(dsn).get("password")
    except psycopg2.ProgrammingError:
        return None  # load_config refuses such a DSN


def _written_keyvalue_passwords(dsn):
    return [quoted or bare for quoted, bare in WRITTEN_PASSWORD.findall(dsn)]


def _written_uri_passwords(dsn):
    found = URI_USER_PASSWORD.match(dsn)
    written = [found.group(1)] if found else []
    return written + [value for _, value in _uri_password_parameters(dsn)]


def _uri_password_parameters(dsn):
    """(offset, value as written) of each ?password= of a URI; the name may be percent-encoded."""
    query_start = dsn.find("?")
    if query_start < 0:
        return []
    found, offset = [], query_start + 1
    for parameter in dsn[offset:].split("&"):
        name, _, value = parameter.partition("=")
        if unquote(name) == "password":
            found.append((offset, value))
        offset += len(parameter) + 1
    return found


def load_config(path):
    """Read, override from the environment and validate; raise ConfigError on any mistake."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found: copy dwh.cfg.example to {path.name} and fill it in")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str.upper  # keys are case-insensitive, stored upper-case
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as error:
        first_line = str(error).splitlines()[0]
        raise ConfigError(f"config file {path} cannot be parsed: {first_line}") from None
    values = {}
    target = _raw_value(parser, KEYS_BY_LABEL[("ETL", "TARGET")], path)
    if target not in TARGETS:
        raise ConfigError(f"{path}: [ETL] TARGET is {target!r}; use one of: {', '.join(TARGETS)}")
    for key in KEYS:
        if target in key.targets:
            values[(key.section, key.name)] = _raw_value(parser, key, path)
    _validate(values, target, path)
    return Config(path, values, _user_checks(parser, path))


def _raw_value(parser, key, path):
    value = os.environ.get(key.env_var)
    if value is None and parser.has_option(key.section, key.name):
        value = parser.get(key.section, key.name)
    value = value.strip() if value is not None else None
    if not value:
        if key.default is not None:
            return key.default
        where = "section missing" if not parser.has_section(key.section) else "key missing"
        raise ConfigError(
            f"{path}: {key.label} is required ({where}); set it in the file or in {key.env_var}"
        )
    if PLACEHOLDER.search(value):
        shown = "the placeholder" if key.secret else repr(value)
        raise ConfigError(f"{path}: {key.label} still holds {shown} from dwh.cfg.example; put the real value")
    return value


def _validate(values, target, path):
    def fail(label, problem):
        raise ConfigError(f"{path}: [{label[0]}] {label[1]} {problem}")

    for label in (("ETL", "MAXERROR"), ("ETL", "LOCK_TIMEOUT_SECONDS")):
        if not values[label].isdigit():
            fail(label, f"must be a whole number >= 0, not {values[label]!r}")
    limit = values[("ETL", "RETRACT_LIMIT_PERCENT")]
    if not (limit.isdigit() and int(limit) <= 100):
        fail(("ETL", "RETRACT_LIMIT_PERCENT"), f"must be a whole number from 0 to 100, not {limit!r}")
    for label in BOOLEAN_KEYS:
        if values.get(label):
            if values[label].lower() not in TRUE_WORDS | FALSE_WORDS:
                fail(label, f"must be true or false, not {values[label]!r}")
            values[label] = values[label].lower()
    for label in (("S3", "REGION"), ("CLUSTER", "REGION")):
        if values.get(label) and not AWS_REGION.fullmatch(values[label]):
            fail(label, f"is not an AWS region name (like us-west-2): {values[label]!r}")
    for dataset in DATASETS:
        if dataset.jsonpaths_key and values[("S3", dataset.jsonpaths_key)] == "auto":
            fail(
                ("S3", dataset.jsonpaths_key),
                "cannot be 'auto': the camelCase fields never match the snake_case columns "
                f"of {dataset.staging.name}; point it at a JSONPaths file such as log_json_path.json",
            )
    _check_roles(values, path)
    if ENGINES[target].reads_local_folders:
        _check_dsn(values[("LOCAL", "DSN")], path)
        if values[("LOCAL", "ADMIN_DSN")]:
            _check_dsn(values[("LOCAL", "ADMIN_DSN")], path, ("LOCAL", "ADMIN_DSN"))
        for name in SOURCE_KEYS:
            values[("S3", name)] = _local_source(values[("S3", name)], ("S3", name), path)
        endpoint = values[("S3", "ENDPOINT_URL")]
        if endpoint and not ENDPOINT_URL.fullmatch(endpoint):
            fail(("S3", "ENDPOINT_URL"), f"is not an http(s):// URL: {endpoint!r}")
        return
    port = values[("CLUSTER", "DB_PORT")]
    if not port.isdigit() or not 0 < int(port) < 65536:
        fail(("CLUSTER", "DB_PORT"), f"must be a port number (1-65535), not {port!r}")
    if not IAM_ROLE_ARN.fullmatch(values[("IAM_ROLE", "ARN")]):
        fail(("IAM_ROLE", "ARN"), "is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)")
    for name in SOURCE_KEYS:
        value = values[("S3", name)]
        if not S3_URL.fullmatch(value):
            fail(("S3", name), f"must be an s3://bucket/prefix URL for TARGET = redshift, not {value!r}")
    prefix = values[("S3", "STAGING_PREFIX")]
    if prefix and not S3_URL.fullmatch(prefix):
        fail(("S3", "STAGING_PREFIX"), f"must be an s3://bucket/prefix URL you can write to, not {prefix!r}")
    if values[("S3", "PACK_SONGS")] in TRUE_WORDS and not prefix:
        fail(("S3", "PACK_SONGS"), "needs [S3] STAGING_PREFIX, where the packs are written")


# A role or user name as the roles' SQL writes it, unquoted: Redshift folds names to lower
# case and allows letters, digits, underscores and dollar signs (r_names.html). A user may
# also be an IAM identity as Redshift names it ("IAM:alice", "IAMR:etl-role"), quoted in SQL.
# At most 63 bytes, PostgreSQL's limit (Redshift's is 127), and not PUBLIC, which both
# engines reserve for everyone (r_CREATE_USER.html: a name "can't be PUBLIC").
DATABASE_NAME = re.compile(r"(?!public$)[a-z_][a-z0-9_$]{0,62}")
IAM_USER_NAME = re.compile(r"IAMR?:[A-Za-z0-9_+=,.@-]{1,64}")


def names_of(value):
    """A comma-separated list as a tuple of names, in order, each once."""
    return tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))


def _check_roles(values, path):
    """[ROLES]: valid names, and analysts may read star tables only."""
    for name in ("ANALYSTS", "OPERATORS", "ANALYST_USERS", "OPERATOR_USERS"):
        value = values[("ROLES", name)]
        users = name.endswith("_USERS")
        for found in names_of(value) if users else (value,):
            if not (DATABASE_NAME.fullmatch(found) or users and IAM_USER_NAME.fullmatch(found)):
                raise ConfigError(
                    f"{path}: [ROLES] {name}: {found!r} is not a database name (lower-case letters,"
                    f" digits, _ and $, starting with a letter or _{', or IAM:name' if users else ''})"
                )
    star = [table.name for table in STAR_TABLES]
    wider = [name for name in names_of(values[("ROLES", "ANALYST_TABLES")]) if name not in star]
    if wider:
        raise ConfigError(
            f"{path}: [ROLES] ANALYST_TABLES names {', '.join(wider)}: analysts may read only the star"
            f" tables ({', '.join(star)})"
        )
    if values[("ROLES", "ANALYSTS")] == values[("ROLES", "OPERATORS")]:
        raise ConfigError(
            f"{path}: [ROLES] ANALYSTS and OPERATORS are both {values[('ROLES', 'ANALYSTS')]!r}: operators"
            " read the rejects, which analysts may not; give them two roles"
        )


def _check_dsn(dsn, path, label=("LOCAL", "DSN")):
    """A DSN libpq cannot read is refused before any connection, without showing it."""
    try:
        parse_dsn(dsn)
    except psycopg2.ProgrammingError as error:
        key = KEYS_BY_LABEL[label]
        source = f" (from {key.env_var})" if os.environ.get(key.env_var, "").strip() else ""
        raise ConfigError(
            f"{path}: {key.label}{source} cannot be read by libpq: {libpq_complaint(error, dsn)}; "
            "write it as key=value pairs (host=… dbname=… user=…) or as a postgresql:// URI"
        ) from None


# libpq's complaints about a connection string that quote a piece of it (group "piece"),
# which can be the password or follow it; any other complaint is cut at its first quote.
LIBPQ_COMPLAINTS = tuple(
    re.compile(pattern, re.DOTALL)
    for pattern in (
        r'missing "=" after "(?P<piece>.*)" in connection info string',
        r'invalid connection option "(?P<piece>.*)"',
        # URIs: "<what is wrong> …: "<piece>"", the words quoting at most "=" or "]"
        r'[^"]*(?:"[=\]]"[^"]*)?: "(?P<piece>.*)"',
    )
)
HIDDEN_PIECE = "<not shown: it may hold the password>"


def libpq_complaint(error, dsn):
    """libpq's message about an unreadable DSN, without a piece of the DSN that may hold
    the password."""
    message = str(error).strip().removeprefix("invalid dsn: ")
    match = next((found for pattern in LIBPQ_COMPLAINTS if (found := pattern.fullmatch(message))), None)
    if match is None:
        return message.split('"')[0].rstrip(": ")
    if _may_hold_password(match.group("piece"), dsn):
        start, end = match.span("piece")
        return message[:start] + HIDDEN_PIECE + message[end:]
    return message


def _may_hold_password(piece, dsn):
    """A piece is shown only when it comes before any password and nowhere from there on."""
    before, after = _split_at_password(dsn)
    return bool(piece) and (piece not in before or piece in after)


def _split_at_password(dsn):
    """(before, from) where a password may start: the word password, a URI's ?password=
    (percent-encoded too), or the colon of a URI's user:password@ (read generously: it
    only decides what an error shows)."""
    starts = [len(dsn)]
    word = re.search("password", dsn, re.IGNORECASE)
    starts += [word.start()] if word else []
    if URI_DSN.match(dsn):
        starts += [offset for offset, _ in _uri_password_parameters(dsn)]
        authority = dsn.index("://") + 3
        colon = dsn.find(":", authority)
        starts += [colon] if colon >= 0 and "@" in dsn[colon:] else []
    start = min(starts)
    return dsn[:start], dsn[start:]


def _local_source(value, label, config_path):
    """An s3:// URL, or a local path relative to the config file's folder that exists."""
    if value.startswith("s3://"):
        if not S3_URL.fullmatch(value):
            raise ConfigError(f"{config_path}: [{label[0]}] {label[1]} is not a valid s3://bucket/prefix URL")
        return value
    resolved = (config_path.parent / value).resolve()
    if not resolved.exists():
        raise ConfigError(f"{config_path}: [{label[0]}] {label[1]} = {value}: {resolved} does not exist")
    return str(resolved)


def _user_checks(parser, path):
    checks = []
    for section in parser.sections():
        if not section.upper().startswith(CHECK_SECTION_PREFIX):
            continue
        name = section[len(CHECK_SECTION_PREFIX) :].strip()
        sql = parser.get(section, "SQL", fallback="").strip()
        expected = parser.get(section, "EXPECTED", fallback="").strip()
        if not sql or not expected:
            raise ConfigError(f"{path}: [{section}] needs both SQL and EXPECTED")
        if not CHECK_QUERY.fullmatch(sql):
            raise ConfigError(f"{path}: [{section}] SQL must be one SELECT (or WITH … SELECT) query")
        checks.append(UserCheck(name, sql, expected))
    return checks


# --- [DWH]: what aws_setup.py creates. ---------------------------------------------------
DWH_KEYS = (
    Key("DWH", "DWH_CLUSTER_TYPE", "multi-node", ()),
    Key("DWH", "DWH_NUM_NODES", "2", ()),
    Key("DWH", "DWH_NODE_TYPE", "dc2.large", ()),
    Key("DWH", "DWH_IAM_ROLE_NAME", "sparkifyRedshiftS3Read", ()),
    Key("DWH", "DWH_CLUSTER_IDENTIFIER", "sparkify-dwh", ()),
    Key("DWH", "DWH_DB", "sparkify", ()),
    Key("DWH", "DWH_DB_USER", "sparkify", ()),
    Key("DWH", "DWH_DB_PASSWORD", None, (), secret=True),
    Key("DWH", "DWH_PORT", "5439", ()),
    # Empty: a private cluster, reached from inside its VPC (docs/security.md).
    Key("DWH", "DWH_INGRESS_CIDR", "", ()),
    # Empty: sparkify-staging-<account>-<region>, created by aws_setup.py in [S3] REGION.
    Key("DWH", "DWH_STAGING_BUCKET", "", ()),
)
# r_CREATE_USER.html: 8 to 64 ASCII characters 33-126 but ' " \ / @, with an upper-case
# letter, a lower-case letter and a digit.
REDSHIFT_PASSWORD = re.compile(r"(?=.*[a-z])(?=.*[A-Z])(?=.*\d)[!#-&(-.0-?A-[\]-~]{8,64}")
IDENTIFIER = re.compile(r"[a-z][a-z0-9-]{0,62}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_+=,.@-]{0,63}")


def load_dwh_settings(path, need_password=False):
    """The [DWH] section as {key: value}, checked; the password only when creating."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found: copy dwh.cfg.example to {path.name} and fill it in")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str.upper
    parser.read(path, encoding="utf-8")
    settings = {}
    for key in DWH_KEYS:
        if key.name == "DWH_DB_PASSWORD" and not need_password:
            continue
        settings[key.name] = _raw_value(parser, key, path)

    def fail(name, problem):
        raise ConfigError(f"{path}: [DWH] {name} {problem}")

    for name in ("DWH_NUM_NODES", "DWH_PORT"):
        if not settings[name].isdigit():
            fail(name, f"must be a whole number, not {settings[name]!r}")
    if settings["DWH_CLUSTER_TYPE"] not in ("single-node", "multi-node"):
        fail("DWH_CLUSTER_TYPE", "must be single-node or multi-node")
    if not IDENTIFIER.fullmatch(settings["DWH_CLUSTER_IDENTIFIER"]):
        fail(
            "DWH_CLUSTER_IDENTIFIER", "must be lower-case letters, digits and hyphens, starting with a letter"
        )
    for name in ("DWH_IAM_ROLE_NAME", "DWH_DB", "DWH_DB_USER"):
        if not NAME.fullmatch(settings[name]):
            fail(name, f"is not a valid name: {settings[name]!r}")
    if need_password and not REDSHIFT_PASSWORD.fullmatch(settings["DWH_DB_PASSWORD"]):
        fail(
            "DWH_DB_PASSWORD",
            "must be 8-64 printable characters with an upper-case letter, a lower-case letter and a digit,"
            " none of ' \" \\ / @ or a blank",
        )
    return settings
