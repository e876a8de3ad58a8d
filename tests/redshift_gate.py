"""A statement gate for the Redshift stand-in: what the Redshift path sends must be what
Amazon's Redshift Database Developer Guide documents, not merely what PostgreSQL accepts.

`problems(sql, node_mode)` returns one message per rule a statement breaks, each naming
its page of the guide (https://docs.aws.amazon.com/redshift/latest/dg/<page>):

- the command must be one of COMMANDS, and its leading form must match that command's
  synopsis (as written on its page: INSERT has no leading WITH, DECLARE no HOLD clause);
- every function called must be in FUNCTIONS, each with the page that documents it;
- no construct of DENIED (the "unsupported PostgreSQL features/functions/data types"
  pages, and constructs no synopsis has);
- every data type (in casts and column definitions) must be a documented one;
- COPY reads S3 with documented options only; SET changes documented parameters only;
- FETCH obeys the node mode: single-node clusters take at most 1000 rows and no ALL.

The rules are data (the tables below); only what the Redshift path sends, and what the
tests inject, is listed: a new command or function is added with its page. sqlglot is not
used: its Redshift dialect accepts PostgreSQL syntax, so it cannot say what Redshift lacks.
"""

import re
from typing import NamedTuple

SINGLE_NODE = "single-node"
MULTI_NODE = "multi-node"
NODE_MODES = (SINGLE_NODE, MULTI_NODE)

# fetch.html: "For single-node clusters, the maximum value for count is 1000. FORWARD ALL
# isn't supported for single-node clusters." No maximum is documented for multi-node.
FETCH_MAX_COUNT = {SINGLE_NODE: 1000, MULTI_NODE: None}


# --- Tokens -------------------------------------------------------------------------------


class Token(NamedTuple):
    kind: str  # word, quoted, string, number, param, op
    text: str
    depth: int  # parentheses around it (a group's own parentheses count outside it)


TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<string>[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*')
      | (?P<quoted>"(?:[^"]|"")*")
      | (?P<param>%(?:\(\w+\))?s)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z_0-9$]*)
      | (?P<op>::|<>|!=|>=|<=|->>|->|\#>>|\#>|\|\||!~\*|!~|~\*|[-+*/%<>=~!@\#^&|?(),;.\[\]{}:$])
      | (?P<other>.)""",
    re.X | re.S,
)


def tokens_of(sql):
    """The statement's tokens, without blanks and comments; a string's text keeps its quotes."""
    found, depth = [], 0
    for match in TOKEN.finditer(sql):
        kind, text = match.lastgroup, match.group()
        if kind in ("space", "comment"):
            continue
        if text == ")":
            depth -= 1
        found.append(Token(kind, text, depth))
        if text == "(":
            depth += 1
    return found


def shape(tokens, top_level_only=False):
    """The tokens as one line for the rules' patterns: strings become '…', words upper case;
    with top_level_only, every parenthesised group becomes (…)."""
    base = tokens[0].depth if tokens else 0
    parts = []
    for token in tokens:
        if top_level_only and token.depth > base:
            continue
        if token.kind == "string":
            parts.append("'…'")
        elif token.kind == "word":
            parts.append(token.text.upper())
        elif top_level_only and token.text == "(":
            parts.append("(…")
        else:
            parts.append(token.text)
    return re.sub(r" ?\. ?", ".", " ".join(parts)).replace("(… )", "(…)")


def statements_of(tokens):
    """The statements of one execute, split at top-level semicolons."""
    current = []
    for token in tokens:
        if token.text == ";" and token.depth == 0:
            if current:
                yield current
            current = []
        else:
            current.append(token)
    if current:
        yield current


# --- Commands and their synopses ----------------------------------------------------------

NAME = r'(?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))*'
# r_WITH_clause.html: WITH [RECURSIVE] common_table_expression [, ...], each
# "CTE_table_name [ ( column_name [, ...] ) ] AS ( query )".
WITH_LIST = rf"WITH (?:RECURSIVE )?{NAME}(?: \(…\))? AS \(…\)(?: , {NAME}(?: \(…\))? AS \(…\))*"
QUERY = rf"(?:{WITH_LIST} )?SELECT\b.*"
TABLE_ATTRIBUTES = (
    r"(?: DISTSTYLE (?:AUTO|EVEN|KEY|ALL)| DISTKEY \(…\)| (?:(?:COMPOUND|INTERLEAVED) )?SORTKEY \(…\)"
    r"| SORTKEY AUTO| ENCODE AUTO)*"
)
TEMPORARY = r"(?: (?:LOCAL )?(?:TEMPORARY|TEMP))?"
NAMES = rf"{NAME}(?: , {NAME})*"
_TABLE_PRIVILEGE = r"(?:SELECT|INSERT|UPDATE|DELETE|DROP|REFERENCES)"
TABLE_PRIVILEGES = rf"(?:{_TABLE_PRIVILEGE}(?: , {_TABLE_PRIVILEGE})*|ALL(?: PRIVILEGES)?)"
SCHEMA_PRIVILEGES = r"(?:(?:CREATE|USAGE)(?: , (?:CREATE|USAGE))*|ALL(?: PRIVILEGES)?)"
GRANTEE = rf"(?:ROLE {NAME}|GROUP {NAME}|PUBLIC|(?!(?:ROLE|GROUP|PUBLIC)\b){NAME})"
# r_GRANT.html: "username [ WITH GRANT OPTION ]": a user only, not a role or group.
GRANT_GRANTEE = (
    rf"(?:ROLE {NAME}|GROUP {NAME}|PUBLIC|(?!(?:ROLE|GROUP|PUBLIC)\b){NAME}(?: WITH GRANT OPTION)?)"
)
ROLE_GRANTEE = rf"(?:ROLE {NAME}|(?!ROLE\b){NAME}(?: WITH ADMIN OPTION)?)"


class Command(NamedTuple):
    name: str  # the statement's first words, after a leading WITH list
    page: str
    synopsis: str  # as the page writes it (shortened with …)
    pattern: str  # the statement's top-level shape, whole


COMMANDS = (
    Command(
        "SELECT",
        "r_SELECT_synopsis.html",
        "[ WITH with_subquery [, ...] ] SELECT …",
        QUERY,
    ),
    Command(
        "INSERT",
        "r_INSERT_30.html",
        "INSERT INTO table_name [ ( column [, ...] ) ]"
        " { DEFAULT VALUES | VALUES ( … ) [, ( … ) ...] | query }",
        rf"INSERT INTO {NAME}(?: \(…\))? (?:DEFAULT VALUES|VALUES \(…\)(?: , \(…\))*|{QUERY})",
    ),
    Command(
        "UPDATE",
        "r_UPDATE.html",
        "[ WITH … ] UPDATE table_name [ [ AS ] alias ] SET column = { expression | DEFAULT } [,...]"
        " [ FROM fromlist ] [ WHERE condition ]",
        rf"(?:{WITH_LIST} )?UPDATE {NAME}(?: (?:AS )?(?!SET\b)\w+)? SET {NAME} = .*",
    ),
    Command(
        "DELETE",
        "r_DELETE.html",
        "[ WITH … ] DELETE [ FROM ] table_name [ USING table_name, ... ] [ WHERE condition ]"
        ' ("The FROM keyword is optional, except when the USING clause is specified")',
        rf"(?:{WITH_LIST} )?DELETE (?:FROM {NAME} USING {NAME}(?: , {NAME})*|(?:FROM )?{NAME})(?: WHERE .*)?",
    ),
    Command(
        "CREATE TABLE",
        "r_CREATE_TABLE_NEW.html",
        "CREATE [ [LOCAL ] { TEMPORARY | TEMP } ] TABLE [ IF NOT EXISTS ] table_name ( … )"
        " [ BACKUP { YES | NO } ] [ table_attributes ]",
        rf"CREATE{TEMPORARY} TABLE(?: IF NOT EXISTS)? {NAME} \(…\)(?: BACKUP (?:YES|NO))?{TABLE_ATTRIBUTES}",
    ),
    Command(
        "CREATE TABLE AS",
        "r_CREATE_TABLE_AS.html",
        "CREATE [ [ LOCAL ] { TEMPORARY | TEMP } ] TABLE table_name [ ( column_name [, ... ] ) ]"
        " [ BACKUP { YES | NO } ] [ table_attributes ] AS query",
        rf"CREATE{TEMPORARY} TABLE {NAME}(?: \(…\))?(?: BACKUP (?:YES|NO))?{TABLE_ATTRIBUTES} AS {QUERY}",
    ),
    Command(
        "DROP TABLE",
        "r_DROP_TABLE.html",
        "DROP TABLE [ IF EXISTS ] name [, ...] [ CASCADE | RESTRICT ]",
        rf"DROP TABLE(?: IF EXISTS)? {NAME}(?: , {NAME})*(?: CASCADE| RESTRICT)?",
    ),
    Command(
        "TRUNCATE",  # documented; the stand-in refuses it, since it commits (r_TRUNCATE.html)
        "r_TRUNCATE.html",
        "TRUNCATE [ TABLE ] table_name",
        rf"TRUNCATE(?: TABLE)? {NAME}",
    ),
    Command(
        "ANALYZE",
        "r_ANALYZE.html",
        "ANALYZE [ VERBOSE ] [ [ table_name [ ( column_name [, ...] ) ] ]"
        " [ PREDICATE COLUMNS | ALL COLUMNS ]",
        rf"ANALYZE(?: VERBOSE)?(?: {NAME}(?: \(…\))?)?(?: PREDICATE COLUMNS| ALL COLUMNS)?",
    ),
    Command(
        "COPY",
        "r_COPY.html",
        "COPY table-name [ column-list ] FROM data_source authorization [ [ FORMAT ] [ AS ] data_format ]"
        " [ parameter [ argument ] [, ... ] ]",
        rf"COPY {NAME}(?: \(…\))? FROM '…' .*",
    ),
    Command(
        "DECLARE",
        "declare.html",
        "DECLARE cursor_name CURSOR FOR query",
        rf"DECLARE {NAME} CURSOR FOR {QUERY}",
    ),
    Command(
        "FETCH",
        "fetch.html",
        "FETCH [ NEXT | ALL | {FORWARD [ count | ALL ] } ] FROM cursor",
        rf"FETCH(?: NEXT| ALL| FORWARD(?: \d+| ALL)?)? FROM {NAME}",
    ),
    Command("CLOSE", "close.html", "CLOSE cursor", rf"CLOSE {NAME}"),
    Command(
        "SET",
        "r_SET.html",
        "SET { [ SESSION | LOCAL ] { SEED | parameter_name } { TO | = }"
        " { value | 'value' | DEFAULT } | SEED TO value }",
        r"SET(?: SESSION| LOCAL)? \w+ (?:TO|=) (?:'…'|-?[\w.]+)",
    ),
    Command("RESET", "r_RESET.html", "RESET { parameter_name | ALL }", r"RESET \w+"),
    Command(
        "LOCK", "r_LOCK.html", "LOCK [ TABLE ] table_name [, ...]", rf"LOCK(?: TABLE)? {NAME}(?: , {NAME})*"
    ),
    Command(
        "BEGIN",
        "r_BEGIN.html",
        "BEGIN [ WORK | TRANSACTION ] [ ISOLATION LEVEL option ] [ READ WRITE | READ ONLY ]",
        r"BEGIN(?: WORK| TRANSACTION)?(?: ISOLATION LEVEL (?:SERIALIZABLE|READ UNCOMMITTED|READ COMMITTED"
        r"|REPEATABLE READ))?(?: READ WRITE| READ ONLY)?",
    ),
    Command("COMMIT", "r_COMMIT.html", "COMMIT [ WORK | TRANSACTION ]", r"COMMIT(?: WORK| TRANSACTION)?"),
    Command(
        "ROLLBACK", "r_ROLLBACK.html", "ROLLBACK [ WORK | TRANSACTION ]", r"ROLLBACK(?: WORK| TRANSACTION)?"
    ),
    Command("END", "r_END.html", "END [ WORK | TRANSACTION ]", r"END(?: WORK| TRANSACTION)?"),
    # Who may do what (sql_queries section 8).
    Command(
        "CREATE ROLE",
        "r_CREATE_ROLE.html",
        "CREATE ROLE role_name [ EXTERNALID external_id ]",
        rf"CREATE ROLE {NAME}",
    ),
    Command(
        "CREATE USER",
        "r_CREATE_USER.html",
        "CREATE USER name [ WITH ] PASSWORD { 'password' | 'md5hash' | 'sha256hash' | DISABLE }"
        " [ option [ ... ] ]",
        rf"CREATE USER {NAME}(?: WITH)? PASSWORD (?:'…'|DISABLE)",
    ),
    Command(
        "ALTER USER",
        "r_ALTER_USER.html",
        "ALTER USER username [ WITH ] option [, ... ] where option is … | PASSWORD { 'password' | 'md5hash'"
        " | DISABLE } [ VALID UNTIL 'expiration_date' ] | …",
        rf"ALTER USER {NAME}(?: WITH)? PASSWORD (?:'…'|DISABLE)",
    ),
    Command(
        "ALTER TABLE",
        "r_ALTER_TABLE.html",
        "ALTER TABLE table_name { … | OWNER TO new_owner | … }",
        rf"ALTER TABLE {NAME} OWNER TO {NAME}",
    ),
    Command(
        "GRANT",
        "r_GRANT.html",
        "GRANT { { SELECT | INSERT | UPDATE | DELETE | DROP | REFERENCES } [,...] | ALL [ PRIVILEGES ] }"
        " ON { [ TABLE ] table_name [, ...] | … } TO { username [ WITH GRANT OPTION ] | ROLE role_name"
        " | GROUP group_name | PUBLIC } [, ...]; GRANT { { CREATE | USAGE } [,...] | ALL [ PRIVILEGES ] }"
        " ON SCHEMA schema_name [, ...] TO …; GRANT { ROLE role_name } [, ...]"
        " TO { { user_name [ WITH ADMIN OPTION ] } | ROLE role_name }[, ...]",
        rf"GRANT (?:{TABLE_PRIVILEGES} ON (?:TABLE )?{NAMES}|{SCHEMA_PRIVILEGES} ON SCHEMA {NAMES})"
        rf" TO {GRANT_GRANTEE}(?: , {GRANT_GRANTEE})*"
        rf"|GRANT ROLE {NAME}(?: , ROLE {NAME})* TO {ROLE_GRANTEE}(?: , {ROLE_GRANTEE})*",
    ),
    Command(
        "REVOKE",
        "r_REVOKE.html",
        "REVOKE [ GRANT OPTION FOR ] { { SELECT | … } [,...] | ALL [ PRIVILEGES ] } ON { [ TABLE ] table_name"
        " [, ...] | … } FROM { username | ROLE role_name | GROUP group_name | PUBLIC } [, ...] [ RESTRICT ];"
        " REVOKE [ GRANT OPTION FOR ] { { CREATE | USAGE } [,...] | ALL [ PRIVILEGES ] } ON SCHEMA"
        " schema_name [, ...] FROM …",
        rf"REVOKE(?: GRANT OPTION FOR)? (?:{TABLE_PRIVILEGES} ON (?:TABLE )?{NAMES}|{SCHEMA_PRIVILEGES} ON"
        rf" SCHEMA {NAMES}) FROM {GRANTEE}(?: , {GRANTEE})*(?: RESTRICT)?",
    ),
)

# r_SET.html takes any parameter_name; these are the documented ones the code sets
# (cm_chap_ConfigurationRef.html lists them all).
PARAMETERS = {
    "statement_timeout": "r_statement_timeout.html",
    "timezone": "r_timezone_config.html",
}


def command_name(top):
    """The command a top-level shape runs: its first words after a leading WITH list."""
    rest = re.sub(rf"^{WITH_LIST} ", "", top)
    words = rest.split(" ")
    if words[0] == "CREATE":
        create = re.match(rf"CREATE{TEMPORARY} TABLE(?: IF NOT EXISTS)? {NAME}(?: \(…\))?(.*)", rest)
        if create:
            return (
                "CREATE TABLE AS" if re.search(r"\bAS (?:WITH|SELECT)\b", create.group(1)) else "CREATE TABLE"
            )
        return " ".join(words[:2])
    if words[0] in ("DROP", "ALTER"):
        return " ".join(words[:2])
    return words[0]


def leading_words(tokens, count=8):
    """The statement's first top-level words, as sent, for a message."""
    shown = {"string": "'…'", "(": "(…)"}
    top = [shown.get(t.kind, shown.get(t.text, t.text)) for t in tokens if t.depth == 0 and t.text != ")"]
    return " ".join(top[:count]) + (" …" if len(top) > count else "")


def command_problems(tokens, top):
    name = command_name(top)
    command = next((c for c in COMMANDS if c.name == name), None)
    if command is None:
        known = ", ".join(c.name for c in COMMANDS)
        return [f"{name} is not a documented Redshift command the gate knows ({known}) (c_SQL_commands.html)"]
    if not re.fullmatch(command.pattern, top):
        outside = f"`{leading_words(tokens)}` is outside {command.name}'s synopsis"
        return [f"{outside} `{command.synopsis}` ({command.page})"]
    return []


# --- Command details: COPY, SET, FETCH ----------------------------------------------------

# The COPY parameters the Redshift path uses, each with the page that documents it.
COPY_OPTIONS = (
    (r"IAM_ROLE (?:DEFAULT|'…')", "copy-parameters-authorization.html"),
    (r"REGION (?:AS )?'…'", "copy-parameters-data-source-s3.html"),
    (r"MANIFEST", "copy-parameters-data-source-s3.html"),
    (r"(?:FORMAT (?:AS )?)?JSON(?: (?:AS )?'…')?", "copy-parameters-data-format.html"),
    (r"GZIP", "copy-parameters-file-compression.html"),
    (r"TIMEFORMAT (?:AS )?'…'", "copy-parameters-data-conversion.html"),
    (r"TRUNCATECOLUMNS|BLANKSASNULL|EMPTYASNULL", "copy-parameters-data-conversion.html"),
    (r"COMPUPDATE(?: PRESET| ON| TRUE| OFF| FALSE)?", "copy-parameters-data-load.html"),
    (r"STATUPDATE(?: ON| TRUE| OFF| FALSE)?", "copy-parameters-data-load.html"),
    (r"MAXERROR (?:AS )?\d+", "copy-parameters-data-load.html"),
)
# copy-parameters-data-source-s3.html: FROM 's3://…'.
COPY_SOURCE_PREFIXES = ("s3://",)


def copy_problems(tokens, top):
    found = []
    source = next((t for t in tokens if t.kind == "string"), None)
    if source is not None and not source.text.strip("'").startswith(COPY_SOURCE_PREFIXES):
        found.append(
            "COPY reads from S3 ('s3://…') here; other sources are not what the code uses (r_COPY.html)"
        )
    options = re.sub(rf"^COPY {NAME}(?: \(…\))? FROM '…' ?", "", top)
    while options:
        option = next(filter(None, (re.match(rf"(?:{p})(?: |$)", options) for p, _ in COPY_OPTIONS)), None)
        if option is None:
            found.append(
                f"COPY parameter `{options.split(' ')[0]}` is not one the gate knows (r_COPY-parameters.html)"
            )
            break
        options = options[option.end() :]
    return found


def set_problems(top):
    match = re.match(r"(?:SET(?: SESSION| LOCAL)?|RESET) (\w+)", top)
    parameter = match.group(1).lower() if match else None
    if parameter and parameter not in PARAMETERS and parameter != "all":
        return [f"{parameter} is not a documented configuration parameter (cm_chap_ConfigurationRef.html)"]
    return []


def fetch_problems(top, node_mode):
    match = re.match(r"FETCH(?: (NEXT|ALL|FORWARD)(?: (\d+|ALL))?)? FROM", top)
    if not match or FETCH_MAX_COUNT[node_mode] is None:
        return []
    direction, count = match.groups()
    if direction == "ALL" or count == "ALL":
        return [
            f"FETCH {direction} {count or ''}".rstrip()
            + " isn't supported for single-node clusters (fetch.html)"
        ]
    if count and int(count) > FETCH_MAX_COUNT[node_mode]:
        return [
            f"FETCH FORWARD {count}: for single-node clusters the maximum count is "
            f"{FETCH_MAX_COUNT[node_mode]} (fetch.html)"
        ]
    return []


# --- Functions ----------------------------------------------------------------------------

# Every function the Redshift path calls, with the page that documents it.
FUNCTIONS = {
    "abs": "r_ABS.html",
    "avg": "r_AVG.html",
    "cast": "r_CAST_function.html",
    "collate": "r_COLLATE.html",  # the function; a COLLATE clause is DENIED
    "coalesce": "r_NVL_function.html",
    "count": "r_COUNT.html",
    "current_schema": "r_CURRENT_SCHEMA.html",
    "extract": "r_EXTRACT_function.html",
    "getdate": "r_GETDATE.html",
    "length": "r_LENGTH.html",
    "ltrim": "r_LTRIM.html",
    "max": "r_MAX.html",
    "md5": "r_MD5.html",
    "min": "r_MIN.html",
    "nullif": "r_NULLIF_function.html",
    "octet_length": "r_OCTET_LENGTH.html",
    "pg_backend_pid": "PG_BACKEND_PID.html",
    "round": "r_ROUND.html",
    "row_number": "r_WF_ROW_NUMBER.html",
    "sum": "r_SUM.html",
    "to_char": "r_TO_CHAR.html",
    "trim": "r_TRIM.html",
}

# PostgreSQL functions Redshift names as unsupported (c_unsupported-postgresql-functions.html),
# for a plainer message; any other function missing from FUNCTIONS is refused as well.
UNSUPPORTED_FUNCTIONS = {
    "pg_advisory_lock": "advisory lock functions",
    "pg_advisory_xact_lock": "advisory lock functions",
    "pg_try_advisory_xact_lock": "advisory lock functions",
    "string_agg": "the STRING_AGG aggregate",
    "array_agg": "the ARRAY_AGG aggregate",
    "generate_series": "set-returning functions",
    "clock_timestamp": "date/time functions",
    "transaction_timestamp": "date/time functions",
    "pg_sleep": "date/time functions",
    "format": "string functions",
    "regexp_matches": "string functions",
    "unnest": "array functions",
}

# Words that open a parenthesis without being a function call.
NOT_FUNCTIONS = {
    "all", "and", "any", "as", "between", "by", "case", "check", "conflict", "distinct", "distkey", "do",
    "else", "except", "exists", "filter", "for", "from", "group", "having", "identity", "in", "intersect",
    "into", "is", "join", "key", "lateral", "like", "ilike", "limit", "minus", "not", "offset", "on", "or",
    "over", "references", "returning", "select", "set", "some", "sortkey", "table", "then", "union",
    "unique", "using", "values", "when", "where", "with", "array", "row", "index",
}  # fmt: skip
# After these, a word followed by ( names a table (and its columns), an alias or a type.
NAME_BEFORE = {
    "into", "table", "exists", "copy", "analyze", "verbose", "references", "on", "as", "::", "like"
}  # fmt: skip


def called_functions(tokens):
    """The name of each function called: a word directly followed by ( that is not a
    keyword, a table or alias with its columns, a sized type or a CTE's column list."""
    for i, token in enumerate(tokens[:-1]):
        if token.kind != "word" or tokens[i + 1].text != "(":
            continue
        word = token.text.lower()
        before = tokens[i - 1].text.lower() if i else ""
        if word in NOT_FUNCTIONS or before in NAME_BEFORE or is_type_position(tokens, i):
            continue
        if is_cte_columns(tokens, i):
            continue
        yield word


def is_type_position(tokens, i):
    """A sized type in a column definition: `column VARCHAR(256)`."""
    before = tokens[i - 1] if i else None
    return (
        before is not None
        and before.kind in ("word", "quoted")
        and before.text.lower() not in NOT_FUNCTIONS
        and tokens[i].text.lower() in TYPE_WORDS
    )


def is_cte_columns(tokens, i):
    """`WITH x (a, b) AS (`: a common table expression's column list."""
    end = closing(tokens, i + 1)
    return end + 2 < len(tokens) and tokens[end + 1].text.upper() == "AS" and tokens[end + 2].text == "("


def closing(tokens, opening):
    """Index of the ) that closes the ( at tokens[opening]."""
    depth = tokens[opening].depth
    return next(
        j for j in range(opening + 1, len(tokens)) if tokens[j].text == ")" and tokens[j].depth == depth
    )


def function_problems(tokens):
    found = []
    for name in dict.fromkeys(called_functions(tokens)):
        if name in FUNCTIONS:
            continue
        if name in UNSUPPORTED_FUNCTIONS:
            what = UNSUPPORTED_FUNCTIONS[name]
            found.append(f"{name}() is not supported: {what} (c_unsupported-postgresql-functions.html)")
        else:
            found.append(
                f"{name}() is not a documented Redshift function the gate knows (c_SQL_functions.html)"
            )
    return found


# --- Denied constructs --------------------------------------------------------------------


class Denied(NamedTuple):
    pattern: str  # over the whole statement's shape (strings are '…', comments gone)
    rule: str
    page: str


DENIED = (
    Denied(
        r"\bIS (?:NOT )?DISTINCT FROM\b",
        "IS DISTINCT FROM is not supported",
        "c_unsupported-postgresql-functions.html",
    ),
    Denied(r"\bON CONFLICT\b", "ON CONFLICT is not in INSERT's synopsis", "r_INSERT_30.html"),
    Denied(r"\bRETURNING\b", "RETURNING is in no INSERT, UPDATE or DELETE synopsis", "r_INSERT_30.html"),
    Denied(
        r"\bFILTER \( WHERE\b",
        "an aggregate's FILTER (WHERE …) is not documented",
        "c_Aggregate_Functions.html",
    ),
    Denied(
        r"\bDISTINCT ON\b",
        "DISTINCT ON is not in the SELECT list's synopsis ([ ALL | DISTINCT ])",
        "r_SELECT_list.html",
    ),
    Denied(r"\bLATERAL\b", "LATERAL is not in the FROM clause's synopsis", "r_FROM_clause30.html"),
    Denied(r"\bTABLESAMPLE\b", "TABLESAMPLE is not in the FROM clause's synopsis", "r_FROM_clause30.html"),
    Denied(
        r"\bCOLLATE (?!\(|CASE_SENSITIVE\b|CASE_INSENSITIVE\b)",
        "a COLLATE clause: collations are not supported (only the COLLATE function, r_COLLATE.html)",
        "c_unsupported-postgresql-features.html",
    ),
    Denied(
        r"^SAVEPOINT\b|^RELEASE\b|\bROLLBACK TO\b",
        "savepoints are not supported (ROLLBACK TO SAVEPOINT)",
        "c_unsupported-postgresql-functions.html",
    ),
    Denied(
        r"\bFROM STDIN\b|\bTO STDOUT\b",
        "COPY … FROM STDIN: COPY's sources are S3, EMR, remote hosts and DynamoDB",
        "r_COPY.html",
    ),
    Denied(
        r"^CREATE (?:UNIQUE )?INDEX\b|\bUSING (?:BTREE|HASH|GIN|GIST|BRIN)\b",
        "indexes are not supported",
        "c_unsupported-postgresql-features.html",
    ),
    Denied(
        r"(?:\(|\bUNION(?: ALL)?|\bINTERSECT|\bEXCEPT) VALUES\b",
        "a VALUES list used as a constant table is not supported",
        "c_unsupported-postgresql-features.html",
    ),
    Denied(
        r"\bARRAY [\[(]|\[",
        "array constructors and subscripted expressions are not supported",
        "c_unsupported-postgresql-features.html",
    ),
    Denied(r"\bROW \(", "row constructors are not supported", "c_unsupported-postgresql-features.html"),
    Denied(r"->|#>", "JSON operators are not documented (JSON functions are)", "json-functions.html"),
    Denied(
        r"\bFOR (?:UPDATE|SHARE|NO KEY UPDATE|KEY SHARE)\b",
        "a locking clause is not in SELECT's synopsis",
        "r_SELECT_synopsis.html",
    ),
    Denied(
        r"\bGENERATED ALWAYS\b",
        "only GENERATED BY DEFAULT AS IDENTITY is documented",
        "r_CREATE_TABLE_NEW.html",
    ),
)


def denied_problems(flat):
    return [f"{d.rule} ({d.page})" for d in DENIED if re.search(d.pattern, flat)]


def update_join_problems(top):
    """r_UPDATE.html: "Left, right, and full outer joins aren't supported in the FROM
    clause of an UPDATE statement"."""
    if command_name(top) == "UPDATE" and re.search(r"\bFROM\b.*\b(?:LEFT|RIGHT|FULL)(?: OUTER)? JOIN\b", top):
        return ["an outer join in UPDATE's FROM clause is not supported (r_UPDATE.html)"]
    return []


# --- Data types -----------------------------------------------------------------------------

# c_Supported_data_types.html and the pages of each type (aliases included).
DOCUMENTED_TYPES = {
    **dict.fromkeys(
        ["smallint", "int2", "integer", "int", "int4", "bigint", "int8", "decimal", "numeric", "real",
         "float4", "double precision", "float8", "float"],
        "r_Numeric_types201.html",
    ),
    **dict.fromkeys(["boolean", "bool"], "r_Boolean_type.html"),
    **dict.fromkeys(
        ["char", "character", "nchar", "bpchar", "varchar", "character varying", "nvarchar", "text",
         "national character", "national character varying"],
        "r_Character_types.html",
    ),
    **dict.fromkeys(
        ["date", "time", "timetz", "timestamp", "timestamptz", "time without time zone",
         "time with time zone", "timestamp without time zone", "timestamp with time zone"],
        "r_Datetime_types.html",
    ),
    "interval": "r_interval_data_types.html",  # the current guide documents INTERVAL types
    "super": "r_SUPER_type.html",
    **dict.fromkeys(["varbyte", "varbinary", "binary varying"], "r_VARBYTE_type.html"),
    "hllsketch": "r_HLLSKTECH_type.html",
    **dict.fromkeys(["geometry", "geography"], "c_Supported_data_types.html"),
}  # fmt: skip
# c_unsupported-postgresql-datatypes.html
UNSUPPORTED_TYPES = {
    "bit", "bit varying", "varbit", "bytea", "json", "jsonb", "serial", "bigserial", "smallserial", "serial2",
    "serial4", "serial8", "money", "uuid", "xml", "hstore", "inet", "cidr", "macaddr", "macaddr8", "point",
    "line", "lseg", "box", "path", "polygon", "circle", "tsvector", "tsquery", "txid_snapshot", "oid",
    "regclass", "regproc", "regtype", "name", '"char"', "int4range", "int8range", "numrange", "tsrange",
    "tstzrange", "daterange",
}  # fmt: skip
TYPE_WORDS = {word for name in (*DOCUMENTED_TYPES, *UNSUPPORTED_TYPES) for word in name.split()}
# r_Character_types.html: TEXT "is converted to a VARCHAR(256) column", BPCHAR to
# CHAR(256), and "If you use the VARCHAR data type without a length specifier in a CREATE
# TABLE statement, the default length is 256": PostgreSQL would make these unlimited.
UNSIZED_COLUMN_TYPES = {"text", "bpchar", "varchar", "character varying", "nvarchar"}


def type_at(tokens, i):
    """(type name, sized, array, next index) of the type that starts at tokens[i]."""
    words = []
    j = i
    while j < len(tokens) and tokens[j].kind in ("word", "quoted"):
        candidate = " ".join([*words, tokens[j].text.lower()])
        if (
            words
            and candidate not in DOCUMENTED_TYPES
            and candidate not in UNSUPPORTED_TYPES
            and not any(name.startswith(candidate + " ") for name in DOCUMENTED_TYPES)
        ):
            break
        words.append(tokens[j].text.lower())
        j += 1
    sized = j < len(tokens) and tokens[j].text == "("
    if sized:
        j = closing(tokens, j) + 1
    array = j < len(tokens) and tokens[j].text == "["
    return " ".join(words), sized, array, j


def type_problem(name, array, column=False, sized=True):
    if array:
        return f"{name}[]: arrays are not supported (c_unsupported-postgresql-datatypes.html)"
    if name in UNSUPPORTED_TYPES:
        return f"{name.upper()} is not supported (c_unsupported-postgresql-datatypes.html)"
    if name not in DOCUMENTED_TYPES:
        return f"{name.upper()} is not a documented Redshift data type (c_Supported_data_types.html)"
    if column and not sized and name in UNSIZED_COLUMN_TYPES:
        return (
            f"a {name.upper()} column without a length: Redshift makes it 256 bytes wide,"
            " the stand-in would not; give the width (r_Character_types.html)"
        )
    return None


def cast_types(tokens):
    """(type name, sized, array) after each :: and each CAST( … AS."""
    casts = [
        (i + 1, closing(tokens, i + 1), t.depth + 1)
        for i, t in enumerate(tokens[:-1])
        if t.text.lower() == "cast" and tokens[i + 1].text == "("
    ]
    for i, token in enumerate(tokens):
        inside_cast = any(start < i < end and token.depth == depth for start, end, depth in casts)
        if token.text == "::" or (token.text.upper() == "AS" and inside_cast):
            name, sized, array, _ = type_at(tokens, i + 1)
            yield name, sized, array


# r_CREATE_TABLE_NEW.html: column_attributes and column_constraints.
COLUMN_ATTRIBUTES = re.compile(
    r"(?: DEFAULT (?:'…'|-?[\w.]+(?: \(…\))?)| IDENTITY \(…\)| GENERATED BY DEFAULT AS IDENTITY \(…\)"
    r"| ENCODE \w+| DISTKEY| SORTKEY| COLLATE CASE_(?:IN)?SENSITIVE| NOT NULL| NULL| UNIQUE| PRIMARY KEY"
    rf"| REFERENCES {NAME}(?: \(…\))?)*"
)
TABLE_ELEMENTS = re.compile(
    rf"(?:PRIMARY KEY|UNIQUE) \(…\)|FOREIGN KEY \(…\) REFERENCES {NAME}(?: \(…\))?"
    rf"|LIKE {NAME}(?: (?:INCLUDING|EXCLUDING) DEFAULTS)?"
)


def column_definitions(tokens):
    """The elements of CREATE TABLE's ( … ) list, each a token list."""
    opening = next((i for i, t in enumerate(tokens) if t.text == "(" and t.depth == 0), None)
    if opening is None:
        return []
    end = closing(tokens, opening)
    elements, current = [], []
    for token in tokens[opening + 1 : end]:
        if token.text == "," and token.depth == 1:
            elements.append(current)
            current = []
        else:
            current.append(token)
    return [*elements, current] if current else elements


def column_problems(tokens):
    found = []
    for element in column_definitions(tokens):
        if re.fullmatch(TABLE_ELEMENTS, shape(element, top_level_only=True)):
            continue
        name, sized, array, after = type_at(element, 1)
        rest = shape(element[after:], top_level_only=True)
        if not name or not COLUMN_ATTRIBUTES.fullmatch(f" {rest}" if rest else ""):
            definition = shape(element, top_level_only=True)
            found.append(f"`{definition}` is not in the synopsis's column list (r_CREATE_TABLE_NEW.html)")
        else:
            found.append(type_problem(name, array, column=True, sized=sized))
    return found


def type_problems(tokens, command):
    found = [type_problem(name, array) for name, _, array in cast_types(tokens)]
    if command == "CREATE TABLE":
        found += column_problems(tokens)
    return [problem for problem in dict.fromkeys(found) if problem]


# --- The gate -------------------------------------------------------------------------------


def problems(sql, node_mode=SINGLE_NODE):
    """What in this SQL (one or more statements, as sent) Redshift's guide does not document;
    [] when everything is documented. node_mode: "single-node" or "multi-node"."""
    if node_mode not in NODE_MODES:
        raise ValueError(f"node_mode must be one of {', '.join(NODE_MODES)}, not {node_mode!r}")
    found = []
    for tokens in statements_of(tokens_of(sql)):
        found += statement_problems(tokens, node_mode)
    return list(dict.fromkeys(found))


def statement_problems(tokens, node_mode):
    odd = [t.text for t in tokens if t.kind == "other"]
    if odd:
        return [f"unreadable text {''.join(odd)!r}: an unterminated string or quoted name?"]
    top, flat = shape(tokens, top_level_only=True), shape(tokens)
    command = command_name(top)
    found = denied_problems(flat) + command_problems(tokens, top) + update_join_problems(top)
    if command == "COPY":
        found += copy_problems(tokens, top)
    if command in ("SET", "RESET"):
        found += set_problems(top)
    if command == "FETCH":
        found += fetch_problems(top, node_mode)
    return found + function_problems(tokens) + type_problems(tokens, command)
