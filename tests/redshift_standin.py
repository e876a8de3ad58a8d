"""A Redshift stand-in for the tests: a real PostgreSQL runs everything the Redshift path
sends, with one piece of test code for what PostgreSQL cannot do, COPY … FROM 's3://…'.

- The database runs every transaction at REPEATABLE READ, whose snapshot is taken at the
  first statement that reads or writes data, as Redshift's is (LOCK and SET take none).
- Tables are created from the Redshift DDL as the scripts send it (no keys are declared
  there, so none are enforced); only the distribution and sort clauses are cut off.
- Text follows Redshift's rules: a VARCHAR(n) column is the domain redshift_varchar_n,
  PostgreSQL's bpchar collated "C" of at most n bytes, so `=`, joins, GROUP BY, DISTINCT,
  UNION and PARTITION BY ignore trailing blanks, OCTET_LENGTH counts them, values keep
  them as stored, and text orders by bytes (`redshift_text_columns`).
- Roles and grants are PostgreSQL's, from Redshift's syntax ("TO ROLE r", "GRANT ROLE r
  TO u", PASSWORD DISABLE: `postgres_role_syntax`); a role named without ROLE, which
  Redshift reads as a user, fails the test. svv_roles and svv_user_grants are views of
  PostgreSQL's roles and memberships. The test server trusts every local login, so
  passwords are not checked.
- stl_load_errors and sys_load_error_detail are tables shaped as documented
  (r_STL_LOAD_ERRORS.html, SYS_LOAD_ERROR_DETAIL.html), in UTC. GETDATE() is a function
  returning the statement's start in the session's time zone, in whole seconds
  (r_GETDATE.html); the database's zone is east of UTC. TRUNCATE is refused.
- The COPY stand-in reads exactly the objects the statement names from S3 (moto's server
  on 127.0.0.1): a manifest's entries, or every key that starts with the prefix (so a
  stray object is loaded, as Redshift would). It maps JSON by Redshift's documented
  rules (a JSONPaths file by position, 'auto' by exact lower-case name;
  copy-usage_notes-copy-from-json.html), converts with TIMEFORMAT 'epochmillisecs',
  BLANKSASNULL, EMPTYASNULL and TRUNCATECOLUMNS, writes each rejected row into both
  load-error tables from a connection of its own (they are logs: a rollback keeps
  them), and fails the statement with Redshift's message when errors exceed MAXERROR.

Every statement the code sends first passes tests/redshift_gate.py: the commands, functions
and constructs Redshift's guide documents, in the stand-in's node mode (install(…, node_mode)).
One it does not document fails the test, even one the code caught and only logged (REFUSED).

What it cannot prove: Redshift's own parser, planner and exact error codes, STATUPDATE,
distribution, and S3 access through the IAM role. Nor these text rules, where bpchar
differs from Redshift's VARCHAR: LENGTH/CHAR_LENGTH ignore trailing blanks (Redshift's
LEN counts them: r_LEN.html), a cast to text or VARCHAR, `||` and text functions (TRIM,
LTRIM, MD5 …) drop them, a value ending in a control character below the blank orders
after the same value without it (where Redshift orders it is not documented), and
CHAR(n) widths count characters, not bytes.

Run a script against it from another process:
  python tests/redshift_standin.py <dsn> etl --config rs.cfg
"""

import gzip
import json
import math
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import boto3
import psycopg2
import psycopg2.extras

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redshift_gate  # noqa: E402

import sql_queries  # noqa: E402
from sparkify import warehouse  # noqa: E402

SYSTEM_TABLES = """
CREATE TABLE IF NOT EXISTS stl_load_errors (
    userid INTEGER,
    slice INTEGER,
    tbl INTEGER,
    starttime TIMESTAMP,
    session INTEGER,
    query INTEGER,
    filename CHAR(256),
    line_number BIGINT,
    colname CHAR(127),
    type CHAR(10),
    col_length CHAR(10),
    position INTEGER,
    raw_line CHAR(1024),
    raw_field_value CHAR(1024),
    err_code INTEGER,
    err_reason CHAR(100)
);
CREATE TABLE IF NOT EXISTS sys_load_error_detail (
    user_id INTEGER,
    query_id BIGINT,
    transaction_id BIGINT,
    session_id INTEGER,
    database_name CHAR(64),
    table_id INTEGER,
    start_time TIMESTAMP,
    file_name CHAR(256),
    line_number BIGINT,
    column_name CHAR(127),
    column_type CHAR(10),
    column_length CHAR(10),
    position INTEGER,
    error_code INTEGER,
    error_message CHAR(512)
);
-- r_SVV_ROLES.html: role_id, role_name, role_owner, external_id. A Redshift role cannot log
-- in; PostgreSQL's CREATE ROLE makes one that cannot either (CREATE USER: one that can).
CREATE OR REPLACE VIEW svv_roles AS
    SELECT CAST(oid AS INTEGER) AS role_id, CAST(rolname AS VARCHAR(128)) AS role_name,
           CAST(NULL AS VARCHAR(128)) AS role_owner, CAST(NULL AS VARCHAR(128)) AS external_id
    FROM pg_roles
    WHERE NOT rolcanlogin;
-- r_SVV_USER_GRANTS.html: user_id, user_name, role_id, role_name, admin_option.
CREATE OR REPLACE VIEW svv_user_grants AS
    SELECT CAST(member.oid AS INTEGER) AS user_id, CAST(member.rolname AS VARCHAR(128)) AS user_name,
           CAST(role.oid AS INTEGER) AS role_id, CAST(role.rolname AS VARCHAR(128)) AS role_name,
           m.admin_option
    FROM pg_auth_members AS m
    JOIN pg_roles AS role ON role.oid = m.roleid
    JOIN pg_roles AS member ON member.oid = m.member
    WHERE member.rolcanlogin;
CREATE SEQUENCE IF NOT EXISTS standin_query_id;
CREATE OR REPLACE FUNCTION getdate() RETURNS TIMESTAMP
    LANGUAGE SQL STABLE
    AS $$ SELECT CAST(date_trunc('second', statement_timestamp()) AS TIMESTAMP) $$;
"""


def prepare_database(dsn, isolation="repeatable read"):
    """Make a fresh PostgreSQL database behave as the stand-in describes. isolation:
    "repeatable read" (Redshift's SNAPSHOT isolation, the default of new clusters), or
    "serializable" (Redshift's SERIALIZABLE, the default of older provisioned clusters):
    PostgreSQL's own, plus Redshift's table-level rule (serializable_violation)."""
    assert isolation in ("repeatable read", "serializable"), isolation
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        name = cur.fetchone()[0]
        cur.execute(f"ALTER DATABASE {name} SET default_transaction_isolation = '{isolation}'")
        if isolation == "serializable":
            cur.execute(TABLE_WRITES)
        # East of UTC, as a user's own setting may be: GETDATE() follows it, the
        # load-error logs do not (they are UTC), so the run must ask in UTC.
        cur.execute(f"ALTER DATABASE {name} SET timezone = 'Asia/Tokyo'")
        cur.execute(SYSTEM_TABLES)
        # Every user reads and writes (through the stand-in's COPY) Redshift's logs
        # (c_visibility-of-data.html), whichever user the scripts log in as.
        cur.execute(STANDIN_TABLES_FOR_EVERYONE)
    conn.close()


STANDIN_TABLES_FOR_EVERYONE = """
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO PUBLIC;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO PUBLIC;
-- Redshift's default, which PostgreSQL 15 dropped: "By default, all users have CREATE and
-- USAGE permissions on the PUBLIC schema" (r_REVOKE.html).
GRANT CREATE ON SCHEMA public TO PUBLIC;
"""


# Redshift's text (r_Character_types.html): "Trailing spaces in VARCHAR and CHAR values are
# treated as semantically insignificant when values are compared", yet a VARCHAR keeps
# them ("Length calculations return the length of VARCHAR character strings with trailing
# spaces included"; r_OCTET_LENGTH.html), its width counts bytes, and text is ordered by
# "binary UTF8 ordering" (c_collation_sequences.html). PostgreSQL's bpchar without a length
# compares, hashes and groups ignoring trailing blanks, stores them and counts them in
# octet_length; collated "C" it orders by bytes.
def varchar_domain_sql(width):
    limit = f"CHECK (octet_length(VALUE) <= {width})"
    return f'CREATE DOMAIN redshift_varchar_{width} AS bpchar COLLATE "C" {limit}'


VARCHAR_TYPE = re.compile(r"\bVARCHAR\((\d+)\)", re.I)
CHAR_TYPE = re.compile(r"\bCHAR\((\d+)\)", re.I)  # \b: not the CHAR of VARCHAR


def create_varchar_domains(cursor, create_table):
    """The domains a CREATE TABLE's VARCHAR widths need, each made the first time
    (sent past the cursor's own checks: the scripts never send these)."""
    for width in sorted({int(width) for width in VARCHAR_TYPE.findall(create_table)}):
        psycopg2.extensions.cursor.execute(cursor, "SELECT to_regtype(%s)", [f"redshift_varchar_{width}"])
        if cursor.fetchone()[0] is None:
            psycopg2.extensions.cursor.execute(cursor, varchar_domain_sql(width))


def redshift_text_columns(create_table):
    """The Redshift DDL's VARCHAR(n) as the domain redshift_varchar_n; CHAR(n), padded
    and blank-insensitive in both engines, only collated "C"."""
    text = VARCHAR_TYPE.sub(r"redshift_varchar_\1", create_table)
    return CHAR_TYPE.sub(r'CHAR(\1) COLLATE "C"', text)


class LoadFailed(Exception):
    """The COPY statement itself fails (not one row): Redshift's whole-statement errors."""


# Every statement the gate refused, as (statement, problems): the `standin` fixture fails a
# test that leaves one here, so a refusal the code caught and only logged is not lost.
REFUSED = []


class StandInCursor(psycopg2.extras.LoggingCursor):
    """Executes on PostgreSQL; COPY from S3 is carried out by `copy_from_s3`."""

    def gate(self, sent):
        """Refuse, as the code sent it, what Redshift's guide does not document. A named
        cursor sends DECLARE "name" CURSOR WITHOUT HOLD FOR … and FETCH FORWARD itersize
        from psycopg2's C code, which no Python override sees: its DECLARE is refused here."""
        sent = sent if isinstance(sent, str) else sent.decode()
        if self.name is not None:
            sent = f'DECLARE "{self.name}" CURSOR {"WITH" if self.withhold else "WITHOUT"} HOLD FOR {sent}'
        found = redshift_gate.problems(sent, self.connection.node_mode)
        if found:
            REFUSED.append((sent, found))
            raise AssertionError(
                f"the Redshift path sent what Redshift does not document ({self.connection.node_mode}):\n"
                f"{sent.strip()[:2000]}\n" + "\n".join(f"- {problem}" for problem in found)
            )

    def execute(self, query, vars=None):
        self.gate(self.mogrify(query, vars))
        text = query if isinstance(query, str) else query.decode()
        serializable_violation(self, text)
        if COPY_FROM_S3.match(text):
            return copy_from_s3(self, text)
        if LOAD_ERROR_LOGS.search(text):
            return self.read_load_errors(text, vars)
        if text.lstrip().upper().startswith("TRUNCATE"):
            raise AssertionError(
                "the Redshift path sent TRUNCATE, which commits on Redshift (r_TRUNCATE.html)"
            )
        if text.lstrip().upper().startswith("CREATE TABLE"):
            create_varchar_domains(self, text)
            text = redshift_text_columns(REDSHIFT_LAYOUT.sub(")", text))
        roles = grantees_that_are_roles(self, text)
        if roles:
            REFUSED.append((text, [f"{', '.join(roles)}: a role named without ROLE, a user on Redshift"]))
            raise AssertionError(
                f"the Redshift path named the role {', '.join(roles)} without ROLE, which Redshift reads"
                f" as a user name (r_GRANT.html):\n{text.strip()}"
            )
        postgres_text = postgres_role_syntax(text)
        if postgres_text == text:
            return super().execute(text, vars)
        try:  # PostgreSQL runs its own form; the log shows Redshift's, as sent
            return psycopg2.extensions.cursor.execute(self, postgres_text, vars)
        finally:
            self.connection.log(self.mogrify(text, vars), self)

    def executemany(self, query, vars_list):
        vars_list = list(vars_list)
        for vars in vars_list:
            self.gate(self.mogrify(query, vars))
        return super().executemany(query, vars_list)

    def copy_expert(self, sql, file, size=8192):
        self.gate(sql)
        return super().copy_expert(sql, file, size)

    def read_load_errors(self, text, vars):
        """Redshift's system tables are logs outside any transaction's snapshot
        (c_serial_isolation.html): read them from a connection of their own, as this
        session (pg_backend_pid), and hand the rows back through this cursor."""
        session = self.connection.info.backend_pid
        side = psycopg2.connect(self.connection.dsn)
        try:
            with side.cursor() as cur:
                cur.execute(text.replace("pg_backend_pid()", str(session)), vars)
                rows = cur.fetchall()
                width = len(cur.description)
        finally:
            side.close()
        if not rows:
            return super().execute(f"SELECT {', '.join(['NULL'] * width)} WHERE FALSE")
        values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(rows))
        return super().execute(f"SELECT * FROM (VALUES {values}) AS logged", [v for row in rows for v in row])


# Redshift names a role "ROLE name" where PostgreSQL writes the name alone, and a user that
# logs in only through IAM has PASSWORD DISABLE (r_GRANT.html, r_REVOKE.html,
# r_CREATE_USER.html); the stand-in's user then has no password.
ROLE_SYNTAX = (
    (re.compile(r"^(\s*GRANT\s+)ROLE\s+", re.I), r"\1"),
    (re.compile(r"\b(TO|FROM)\s+ROLE\s+(\w+)", re.I), r"\1 \2"),
    (re.compile(r'^(\s*CREATE\s+USER\s+(?:\w+|"[^"]+"))\s+PASSWORD\s+DISABLE\b', re.I), r"\1"),
)
# A bare name after TO or FROM in GRANT and REVOKE is a user on Redshift (r_GRANT.html:
# "username | ROLE role_name | GROUP group_name | PUBLIC"); PostgreSQL would take a role there.
BARE_GRANTEES = re.compile(r'\b(?:TO|FROM)\s+((?!ROLE\b|GROUP\b|PUBLIC\b)(?:\w+|"[^"]+"))', re.I)


def grantees_that_are_roles(cursor, text):
    """The bare names a GRANT or REVOKE sends that are roles, not users."""
    if not re.match(r"\s*(GRANT|REVOKE)\b", text, re.I):
        return []
    names = [
        name.strip('"') if name.startswith('"') else name.lower() for name in BARE_GRANTEES.findall(text)
    ]
    if not names:
        return []
    psycopg2.extensions.cursor.execute(
        cursor, "SELECT rolname FROM pg_roles WHERE NOT rolcanlogin AND rolname = ANY(%s)", (names,)
    )
    return [name for (name,) in cursor.fetchall()]


def postgres_role_syntax(text):
    for pattern, replacement in ROLE_SYNTAX:
        text = pattern.sub(replacement, text)
    return text


LOAD_ERROR_LOGS = re.compile(r"\b(stl_load_errors|sys_load_error_detail)\b")
REDSHIFT_LAYOUT = re.compile(r"\)\s*\n\s*DISTSTYLE[^\n]*$")


# --- Redshift's SERIALIZABLE isolation, table by table ----------------------------------------
# Redshift orders the writes to a table by its table lock ("COPY and INSERT operations
# against the same table are held in a wait state until the lock is released",
# c_write_readwrite.html) and stops a transaction that no serial order explains with error
# 1023 (c_serial_isolation.html). A transaction that read a table in its snapshot, then
# writes it after another transaction committed a write to it, would have to come both
# before the other (it did not see the other's rows) and after it (its write follows the
# other's): 1023. PostgreSQL's SERIALIZABLE tracks rows and sees no conflict between two
# INSERTs, so a database prepared "serializable" adds this rule: every write is logged
# with its transaction, and a write to a table the transaction read (a table named after
# FROM, JOIN or USING) fails if a transaction its snapshot does not see wrote that table.
TABLE_WRITES = "CREATE TABLE IF NOT EXISTS standin_table_writes (table_name TEXT, writer XID8)"
READ_TABLES = re.compile(r"\b(?:FROM|JOIN|USING)\s+(\w+)", re.I)
WRITTEN_TABLE = re.compile(r"\s*(?:INSERT\s+INTO|DELETE\s+FROM|UPDATE|COPY)\s+(\w+)", re.I)


def serializable_violation(cursor, text):
    """Redshift's rule above, on a database prepared "serializable"; a no-op otherwise."""
    conn = cursor.connection
    if conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        conn.standin_tables_read = set()  # the statement begins a transaction
    read = conn.__dict__.setdefault("standin_tables_read", set())
    read.update(name.lower() for name in READ_TABLES.findall(text))
    written = WRITTEN_TABLE.match(text)
    if written is None or not is_serializable(cursor):
        return
    table = written.group(1).lower()
    if table in read and written_since_snapshot(cursor, table):
        fail_statement(
            cursor,
            f"1023 DETAIL: Serializable isolation violation on table - {table}, transactions forming"
            " the cycle are: this one and one that wrote it since this one's snapshot (stand-in)",
        )
    base = psycopg2.extensions.cursor
    base.execute(cursor, "INSERT INTO standin_table_writes VALUES (%s, pg_current_xact_id())", (table,))


def is_serializable(cursor):
    conn = cursor.connection
    if "standin_serializable" not in conn.__dict__:
        psycopg2.extensions.cursor.execute(cursor, "SHOW transaction_isolation")  # takes no snapshot
        conn.standin_serializable = cursor.fetchone()[0] == "serializable"
    return conn.standin_serializable


def written_since_snapshot(cursor, table):
    """Did a committed transaction that this one's snapshot does not see write the table?
    (The writes are read from a connection of their own, which sees every commit.)"""
    side = psycopg2.connect(cursor.connection.dsn)
    side.set_session(isolation_level="READ COMMITTED", autocommit=True)
    try:
        with side.cursor() as cur:
            cur.execute("SELECT writer::TEXT FROM standin_table_writes WHERE table_name = %s", (table,))
            writers = [writer for (writer,) in cur.fetchall()]
    finally:
        side.close()
    psycopg2.extensions.cursor.execute(
        cursor,
        "SELECT COALESCE(BOOL_OR(NOT pg_visible_in_snapshot(CAST(w AS XID8), pg_current_snapshot())), FALSE)"
        " FROM UNNEST(CAST(%s AS TEXT[])) AS w",
        (writers,),
    )
    return cursor.fetchone()[0]


def connect(dsn, node_mode=redshift_gate.SINGLE_NODE):
    conn = psycopg2.connect(
        dsn, connection_factory=warehouse.StatementLoggingConnection, cursor_factory=StandInCursor
    )
    conn.node_mode = node_mode  # for the gate's FETCH rules (fetch.html)
    return conn


def install(dsn, patch=setattr, node_mode=redshift_gate.SINGLE_NODE, as_config_users=False):
    """Point the scripts' Redshift connections at the stand-in (patch: monkeypatch.setattr),
    a cluster of node_mode ("single-node" or "multi-node"); local-target connections are
    left alone. They log in as dsn's user, or as_config_users as the config's [CLUSTER]
    DB_USER; an admin's login (sparkify.roles) as its own user. Passwords are not checked."""
    open_local = warehouse._open

    def open_standin(config, login=None):
        if config.target != "redshift":
            return open_local(config, login)
        user = login[0] if login else config.get("CLUSTER", "DB_USER") if as_config_users else None
        return connect(dsn if user is None else f"{dsn} user={user}", node_mode)

    patch(warehouse, "_open", open_standin)


# --- COPY … FROM 's3://…' ----------------------------------------------------------------------

COPY_FROM_S3 = re.compile(r"\s*COPY\s+(\w+)(?:\s*\(([^)]*)\))?\s+FROM\s+'(s3://[^']+)'\s+(.*)$", re.S | re.I)
OPTION = re.compile(
    r"(IAM_ROLE|REGION|FORMAT AS JSON|TIMEFORMAT)\s+'([^']*)'|(MAXERROR)\s+(\d+)"
    r"|(COMPUPDATE|STATUPDATE)\s+(ON|OFF)|(MANIFEST|GZIP|TRUNCATECOLUMNS|BLANKSASNULL|EMPTYASNULL)",
    re.I,
)
EPOCH = datetime(1970, 1, 1)
INT32 = (-(2**31), 2**31 - 1)


def parse_copy(sql):
    """(table, source, options); with a column list, the table as COPY fills it: those
    columns in that order, the others take NULL (copy-parameters-column-mapping.html)."""
    table_name, column_list, source, rest = COPY_FROM_S3.match(sql).groups()
    options = {}
    for match in OPTION.finditer(rest):
        groups = [g for g in match.groups() if g is not None]
        options[groups[0].upper()] = groups[1] if len(groups) > 1 else True
    table = next(t for t in sql_queries.STAGING_TABLES if t.name == table_name)
    if column_list is not None:
        types = dict(table.columns)
        listed = [name.strip() for name in column_list.split(",")]
        table = table._replace(columns=tuple((name, types[name]) for name in listed))
    return table, source, options


def s3():
    return boto3.client("s3")  # AWS_ENDPOINT_URL: moto's server


def split(url):
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.lstrip("/")


def read_object(client, url):
    bucket, key = split(url)
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def check_region(client, url, region, known={}):  # noqa: B006 - a cache, on purpose
    """REGION: every resource, manifest included, must be in it (copy-parameters-data-source-s3.html)."""
    bucket, _ = split(url)
    if (client, bucket) not in known:
        known[(client, bucket)] = (
            client.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
        )
    found = known[(client, bucket)]
    if region and found != region:
        raise LoadFailed(f"S3ServiceException:The bucket {bucket} is in {found}, not in REGION {region}")


def source_urls(client, source, options):
    """Exactly the objects COPY reads: the manifest's entries, or every key with the prefix."""
    if options.get("MANIFEST"):
        manifest = json.loads(read_object(client, source))
        return [entry["url"] for entry in manifest["entries"]]
    bucket, prefix = split(source)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    urls = [f"s3://{bucket}/{item['Key']}" for page in pages for item in page.get("Contents", [])]
    if not urls:
        raise LoadFailed(f"The specified S3 prefix '{prefix}' does not exist")
    return urls


def jsonpaths_of(client, json_format, table):
    """(column, path steps) in table order: a JSONPaths file by position, 'auto' by name."""
    if json_format == "auto":
        return [(name, (name,)) for name in table.column_names]
    paths = json.loads(read_object(client, json_format))["jsonpaths"]
    if len(paths) != len(table.columns):
        raise LoadFailed("Number of jsonpaths and the number of columns should match")
    if any("['" in p for p in paths) and any(re.search(r"\$\.|\w\.", p) for p in paths):
        raise LoadFailed("Invalid JSONPath format: cannot mix bracket and dot notation")
    steps = [tuple(re.findall(r"\['([^']*)'\]|\.(\w+)", p)) for p in paths]
    return [
        (name, tuple(a or b for a, b in path)) for name, path in zip(table.column_names, steps, strict=True)
    ]


def json_objects(text):
    """(line, object) for each JSON object one after another in a file; a value that does
    not parse ends the file with an error on its line."""
    decoder, position, length = json.JSONDecoder(), 0, len(text)
    while True:
        while position < length and text[position] in " \t\r\n":
            position += 1
        if position >= length:
            return
        line = text.count("\n", 0, position) + 1
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            yield line, RowError("", 1224, f"Invalid JSON: {error.msg}", text[position : position + 100])
            return
        yield line, value


class RowError(Exception):
    def __init__(self, column, code, reason, raw):
        super().__init__(reason)
        self.column, self.code, self.reason, self.raw = column, code, reason, raw


def convert(value, column, sql_type, options):
    """One JSON value as the column's COPY text, by Redshift's rules; raises RowError."""
    base = sql_type.split()[0].split("(")[0].upper()
    raw = value if isinstance(value, str) else json.dumps(value)
    if value is None:
        text = None
    elif base in ("INTEGER", "SMALLINT", "BIGINT"):
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value).strip()):
            raise RowError(column, 1207, f"Invalid digit, Value '{raw[:20]}', Pos 0, Type: Integer", raw)
        if not INT32[0] <= int(value) <= INT32[1]:
            raise RowError(column, 1216, f"Overflow, Value '{raw[:20]}', Type: Integer", raw)
        text = str(int(value))
    elif base == "DOUBLE":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RowError(column, 1208, "FLOAT data conversion error", raw) from None
        if not math.isfinite(number):
            raise RowError(column, 1208, "FLOAT data conversion error", raw)
        text = repr(number)
    elif base == "TIMESTAMP":
        if options.get("TIMEFORMAT") != "epochmillisecs" or not re.fullmatch(r"\d+", str(value)):
            raise RowError(column, 1206, "Invalid timestamp format or value", raw)
        text = str(EPOCH + timedelta(milliseconds=int(value)))
    else:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if "\x00" in text:
            raise RowError(column, 1220, "String contains invalid or unsupported UTF8 codepoints", raw)
        if (options.get("EMPTYASNULL") and text == "") or (options.get("BLANKSASNULL") and not text.strip()):
            text = None
        width = sql_queries.varchar_width(sql_type)
        if text is not None and width and len(text.encode()) > width:
            if not options.get("TRUNCATECOLUMNS"):
                raise RowError(column, 1204, "String length exceeds DDL length", raw)
            text = text.encode()[:width].decode("utf-8", "ignore")
    if text is None and "NOT NULL" in sql_type.upper():
        raise RowError(column, 1213, "Missing data for not-null field", "")
    if text is None:
        return "\\N"
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def lookup(obj, path):
    for step in path:
        if not isinstance(obj, dict) or step not in obj:
            return None
        obj = obj[step]
    return obj


def rows_of(url, data, mapping, table, options):
    """(COPY text line or None, RowError or None, line number, raw line) per record."""
    if options.get("GZIP"):
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        yield None, RowError("", 1220, "String contains invalid or unsupported UTF8 codepoints", ""), 1, ""
        return
    types = dict(table.columns)
    for line, value in json_objects(text):
        if isinstance(value, RowError):
            yield None, value, line, value.raw
            continue
        raw_line = json.dumps(value)[:1024]
        try:
            if not isinstance(value, dict):
                raise RowError("", 1224, "Invalid JSON object", raw_line)
            cells = [convert(lookup(value, path), name, types[name], options) for name, path in mapping]
            yield "\t".join(cells) + "\n", None, line, raw_line
        except RowError as error:
            yield None, error, line, raw_line


def record_error(admin, session, query_id, url, line, raw_line, error):
    """One rejected row into both load-error logs (from their own connection); a log a
    test has removed is skipped."""
    with admin.cursor() as cur:
        cur.execute("SELECT to_regclass('stl_load_errors'), to_regclass('sys_load_error_detail')")
        stl, sys_view = cur.fetchone()
        if stl:
            cur.execute(
                "INSERT INTO stl_load_errors (userid, slice, tbl, starttime, session, query, filename,"
                " line_number, colname, type, col_length, position, raw_line, raw_field_value, err_code,"
                " err_reason) VALUES (100, 0, 0, clock_timestamp() AT TIME ZONE 'UTC', %s, %s, %s, %s,"
                " %s, '', '', 0, %s, %s, %s, %s)",
                (
                    session,
                    query_id,
                    url,
                    line,
                    error.column,
                    raw_line[:1024],
                    error.raw[:1024],
                    error.code,
                    error.reason[:100],
                ),
            )
        if sys_view:
            cur.execute(
                "INSERT INTO sys_load_error_detail (user_id, query_id, transaction_id, session_id,"
                " database_name, table_id, start_time, file_name, line_number, column_name, column_type,"
                " column_length, position, error_code, error_message) VALUES (100, %s, 0, %s,"
                " current_database(), 0, clock_timestamp() AT TIME ZONE 'UTC', %s, %s, %s, '', '', 0,"
                " %s, %s)",
                (query_id, session, url, line, error.column, error.code, error.reason[:512]),
            )


def copy_from_s3(cursor, sql):
    """Carry out one COPY … FROM 's3://…' as Redshift documents it."""
    table, source, options = parse_copy(sql)
    client = s3()
    admin = psycopg2.connect(cursor.connection.dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT nextval('standin_query_id')")
            query_id = cur.fetchone()[0]
        try:
            check_region(client, source, options.get("REGION"))
            if options.get("FORMAT AS JSON", "auto") != "auto":
                check_region(client, options["FORMAT AS JSON"], options.get("REGION"))
            urls = source_urls(client, source, options)
            mapping = jsonpaths_of(client, options.get("FORMAT AS JSON"), table)
            lines, errors = [], 0
            for url in urls:
                check_region(client, url, options.get("REGION"))
                for text, error, line, raw_line in rows_of(
                    url, read_object(client, url), mapping, table, options
                ):
                    if error is None:
                        lines.append(text)
                        continue
                    errors += 1
                    record_error(
                        admin, cursor.connection.info.backend_pid, query_id, url, line, raw_line, error
                    )
        except LoadFailed as failure:
            fail_statement(cursor, str(failure))
        if errors > int(options.get("MAXERROR", 0)):
            fail_statement(
                cursor,
                f"Load into table '{table.name}' failed.  Check 'stl_load_errors' system table for details.",
            )
        columns = ", ".join(table.column_names)
        psycopg2.extensions.cursor.copy_expert(
            cursor, f"COPY {table.name} ({columns}) FROM STDIN", _Lines(lines)
        )
    finally:
        admin.close()


class _Lines:
    """A file over COPY text lines, for copy_expert."""

    def __init__(self, lines, per_read=1000):
        self._chunks = ("".join(lines[i : i + per_read]) for i in range(0, len(lines), per_read))

    def read(self, size=-1):
        return next(self._chunks, "")


def fail_statement(cursor, message):
    """Fail as Redshift's COPY fails: an error that aborts the transaction."""
    quoted = message.replace("'", "''").replace("%", "%%")
    psycopg2.extensions.cursor.execute(cursor, f"DO $$ BEGIN RAISE EXCEPTION '{quoted}'; END $$")


def run_script(dsn, script, argv):
    """Run create_tables.py or etl.py against the stand-in; returns its exit code."""
    import importlib

    install(dsn)
    return importlib.import_module(script).main(argv)


if __name__ == "__main__":
    sys.exit(run_script(sys.argv[1], sys.argv[2], sys.argv[3:]))
