"""What differs between the two warehouses, as data: one Engine per [ETL] TARGET.

Code asks an engine for a capability (`engine.advisory_lock`), never for its name; a
third engine is one more Engine here, and the SQL its capabilities call for.
"""

from typing import NamedTuple


class Engine(NamedTuple):
    target: str  # the [ETL] TARGET value that names it
    # DDL
    enforces_keys: bool  # PRIMARY KEYs declared (Redshift's are informational, and its planner trusts them)
    collates_text_in_ddl: bool  # text columns COLLATE "C": byte order whatever the database's locale
    layout_clauses: bool  # DISTSTYLE / DISTKEY / SORTKEY
    unlogged_staging: bool  # staging tables skip the write-ahead log
    indexes: bool
    # a run
    reads_local_folders: bool  # sources are local folders (s3:// downloaded first); else COPY from S3
    staging_in_temp_tables: bool  # a per-run temporary staging table; else TRUNCATE in the run
    copy_from_stdin: bool  # bulk writes (staging, ledger) through COPY … FROM STDIN
    explicit_analyze: bool  # the run analyses its temporary tables and the tables it grew
    orders_inserts: bool  # an insert into a keyed table in key order appends to its index
    advisory_lock: bool  # the run lock: an advisory lock; else LOCK on a table of its own
    savepoints: bool  # a failed user check rolls back to a savepoint and the run goes on
    serializable_tables: bool  # reading a table others write outside the lock risks error 1023
    # who may do what
    role_keyword: bool  # GRANT/REVOKE name a role "ROLE name", and a role is granted with GRANT ROLE
    role_catalogs: str  # "svv": SVV_ROLES and SVV_USER_GRANTS list roles and members; "pg": pg_roles
    password_disable: bool  # CREATE USER … PASSWORD DISABLE: a user that logs in only through IAM
    md5_passwords: bool  # a password is sent as 'md5' + MD5(password + user name), never in clear


POSTGRES = Engine(
    target="local",
    enforces_keys=True,
    collates_text_in_ddl=True,
    layout_clauses=False,
    unlogged_staging=True,
    indexes=True,
    reads_local_folders=True,
    staging_in_temp_tables=False,
    copy_from_stdin=True,
    explicit_analyze=True,
    orders_inserts=True,
    advisory_lock=True,
    savepoints=True,
    serializable_tables=False,
    role_keyword=False,
    role_catalogs="pg",
    password_disable=False,
    md5_passwords=False,  # PostgreSQL would keep an MD5 verifier, which SCRAM logins refuse
)

# Each Redshift capability is a page of Amazon's Redshift Database Developer Guide:
# keys t_Defining_constraints.html; order c_collation_sequences.html; TRUNCATE commits
# r_TRUNCATE.html; no indexes c_unsupported-postgresql-features.html; ANALYZE after
# CREATE TABLE AS r_ANALYZE.html; savepoints c_unsupported-postgresql-functions.html
# ("ROLLBACK TO SAVEPOINT"); error 1023 c_serial_isolation.html; roles r_GRANT.html
# ("TO … ROLE role_name", "GRANT ROLE role_name TO"), r_SVV_ROLES.html, r_SVV_USER_GRANTS.html,
# r_CREATE_USER.html ("PASSWORD DISABLE"; "As a more secure alternative to passing the
# CREATE USER password parameter as clear text, you can specify an MD5 hash of a string
# that includes the password and user name").
REDSHIFT = Engine(
    target="redshift",
    enforces_keys=False,
    collates_text_in_ddl=False,
    layout_clauses=True,
    unlogged_staging=False,
    indexes=False,
    reads_local_folders=False,
    staging_in_temp_tables=True,
    copy_from_stdin=False,
    explicit_analyze=False,
    orders_inserts=False,  # no index to append to (c_unsupported-postgresql-features.html)
    advisory_lock=False,
    savepoints=False,
    serializable_tables=True,
    role_keyword=True,
    role_catalogs="svv",
    password_disable=True,
    md5_passwords=True,
)

ENGINES = {engine.target: engine for engine in (POSTGRES, REDSHIFT)}
TARGETS = tuple(ENGINES)
