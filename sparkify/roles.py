"""Make the warehouse's roles and users, as an admin: who may do what.

The loader is the user the config connects as ([LOCAL] DSN's user, [CLUSTER] DB_USER):
it owns every table, and create_tables.py and etl.py run as it. [ROLES] ANALYSTS may read
the star tables of ANALYST_TABLES, OPERATORS the star, the history of runs, the ledger
and the rejects (create_tables.py grants them on each table it makes). This makes, once
and again without harm:
  - the two roles, and the users of [ROLES] ANALYST_USERS and OPERATOR_USERS as members;
  - the loader, with the config's password (with none, Redshift's PASSWORD DISABLE:
    temporary IAM credentials only); analysts and operators without one (Redshift:
    PASSWORD DISABLE, IAM only);
  - CREATE on schema public for the loader only;
  - the tables of an older warehouse handed to the loader, and their grants made true.
What exists already (roles, users, memberships) is read first and not sent again. A
password is a statement parameter (psycopg2 writes it into the text the server gets; on
Redshift as its MD5 hash) and is never printed: --verbose and --dry-run mask it.

Redshift: `python aws_setup.py roles` runs this as the cluster's master user ([DWH]
DWH_DB_USER, SPARKIFY_DWH_DWH_DB_PASSWORD). PostgreSQL: as [LOCAL] ADMIN_DSN, a superuser
(a CREATEROLE role may not grant on tables or schema public it does not own).

examples:
  python -m sparkify.roles --config dwh.cfg
  python -m sparkify.roles --config dwh.cfg --dry-run    # the SQL, nothing run
"""

import getpass
import hashlib
import logging
import sys

from psycopg2.extensions import parse_dsn

import sql_queries
from sparkify import cli, warehouse
from sparkify.config import DATABASE_NAME, IAM_USER_NAME, REDSHIFT_PASSWORD, load_config, load_dwh_settings
from sparkify.errors import ConfigError
from sparkify.output import add_secret, mask_secrets, masked

log = logging.getLogger("sparkify")


def refuse_unusable_loader(config):
    """The loader's name goes into SQL as written, and on Redshift its password must meet
    r_CREATE_USER.html's rules (neither is shown)."""
    loader = config.loader
    if not (DATABASE_NAME.fullmatch(loader) or IAM_USER_NAME.fullmatch(loader)):
        raise ConfigError(
            f"{config.path}: the loader's user name {loader!r} is not a database name (lower-case letters,"
            " digits, _ and $, starting with a letter or _, or IAM:name / IAMR:name)"
        )
    password = config.loader_password
    # Sent as its MD5 form, a password is not checked by Redshift ("it doesn't validate the
    # password portion of the string", r_CREATE_USER.html): so it is checked here.
    if config.engine.md5_passwords and password and not REDSHIFT_PASSWORD.fullmatch(password):
        raise ConfigError(
            f"{config.path}: [CLUSTER] DB_PASSWORD is not a password Redshift accepts: 8-64 characters"
            " with an upper-case letter, a lower-case letter and a digit, none of ' \" \\ / @ or a blank"
        )


def refuse_overreach(config, admin):
    """A config whose users would read more than their role allows: an analyst who is
    also the loader, an operator or the admin, or a role named like a user."""
    loader = config.loader
    analysts = config.members("ANALYST_USERS")
    operators = config.members("OPERATOR_USERS")
    problems = [
        *(f"{user} is the loader, who owns every table" for user in analysts if user == loader),
        *(f"{user} is the admin, who reads every table" for user in analysts if user == admin),
        *(f"{user} is also an operator, who reads the rejects" for user in analysts if user in operators),
        *(
            f"the role {role} has the name of a user"
            for role in (config.analysts, config.operators)
            if role in (loader, admin, *analysts, *operators)
        ),
    ]
    if operators and loader in operators:
        problems.append(f"{loader} is the loader and cannot be an operator too")
    if problems:
        raise ConfigError(
            f"{config.path}: [ROLES] would let a user do more than their role: {'; '.join(problems)}"
        )


class Statement:
    """One statement of the plan: what it does, its SQL, its parameters (a password)."""

    def __init__(self, what, sql, parameters=None):
        self.what, self.sql, self.parameters = what, sql, parameters


def plan(cursor, config):
    """Every statement still needed, read from what the database holds now."""
    members = {
        config.analysts: config.members("ANALYST_USERS"),
        config.operators: config.members("OPERATOR_USERS"),
    }
    return [
        *_missing_roles(cursor, config.engine, tuple(members)),
        *_users(cursor, config, (config.loader, *(user for users in members.values() for user in users))),
        *_missing_memberships(cursor, config.engine, members),
        *(
            Statement(f"schema public: only {config.loader} creates", sql)
            for sql in sql_queries.schema_privilege_statements(config.loader)
        ),
        *_tables(cursor, config),
    ]


def _missing_roles(cursor, engine, roles):
    cursor.execute(sql_queries.EXISTING_ROLES_SQL[engine.role_catalogs], (roles,))
    existing = {name for (name,) in cursor.fetchall()}
    return [
        Statement(f"created role {role}", sql_queries.create_role_sql(role))
        for role in roles
        if role not in existing
    ]


def _users(cursor, config, users):
    """Each user that is missing; the loader's password set when the config has one."""
    cursor.execute(sql_queries.EXISTING_USERS_SQL, (users,))
    existing = {name for (name,) in cursor.fetchall()}
    password = config.loader_password
    steps = []
    for user in users:
        with_password = user == config.loader and password is not None
        parameters = (sent_password(config.engine, user, password),) if with_password else None
        if user not in existing:
            sql = sql_queries.create_user_sql(user, config.engine, with_password)
            steps.append(Statement(f"created user {user}", sql, parameters))
        elif with_password:
            steps.append(
                Statement(f"set {user}'s password", sql_queries.alter_password_sql(user), parameters)
            )
    return steps


def sent_password(engine, user, password):
    """The password as the statement carries it: on Redshift 'md5' + MD5(password + user
    name), r_CREATE_USER.html's "more secure alternative" to clear text (masked as well:
    it logs in as the password does)."""
    if not engine.md5_passwords:
        return password
    hashed = "md5" + hashlib.md5((password + user).encode()).hexdigest()
    add_secret(hashed)
    return hashed


def _missing_memberships(cursor, engine, members):
    cursor.execute(sql_queries.EXISTING_MEMBERS_SQL[engine.role_catalogs], (tuple(members),))
    existing = set(cursor.fetchall())
    return [
        Statement(f"granted {role} to {user}", sql_queries.grant_role_sql(role, user, engine))
        for role, users in members.items()
        for user in users
        if (user, role) not in existing
    ]


def _tables(cursor, config):
    """The project's tables that exist: handed to the loader, their grants made true."""
    loader = config.loader
    cursor.execute(sql_queries.tables_owned_by_others_sql("%s"), (sql_queries.OWNED_TABLES, loader))
    steps = [
        Statement(f"handed {table} to {loader}", sql_queries.owner_to_sql(table, loader))
        for table, _ in cursor.fetchall()
    ]
    cursor.execute(sql_queries.EXISTING_TABLES_SQL, (sql_queries.OWNED_TABLES,))
    existing = [name for (name,) in cursor.fetchall()]
    grants = sql_queries.table_grants(
        config.engine, config.analysts, config.operators, config.analyst_tables, existing
    )
    return steps + [Statement(what, sql) for what, sql in grants]


def admin_connection(config):
    """Redshift: the master user of [DWH]; PostgreSQL: [LOCAL] ADMIN_DSN."""
    if config.engine.reads_local_folders:
        dsn = config.get("LOCAL", "ADMIN_DSN")
        if not dsn:
            raise ConfigError(
                f"{config.path}: [LOCAL] ADMIN_DSN is required to make the roles (a superuser's DSN,"
                " or set SPARKIFY_LOCAL_ADMIN_DSN)"
            )
        return warehouse.connect(config, dsn), parse_dsn(dsn).get("user") or getpass.getuser()
    settings = load_dwh_settings(config.path, need_password=True)
    add_secret(settings["DWH_DB_PASSWORD"])
    user = settings["DWH_DB_USER"]
    return warehouse.connect(config, (user, settings["DWH_DB_PASSWORD"])), user


def make_roles(conn, config, admin):
    """Check the config, then send the plan in one transaction; returns the statements."""
    refuse_unusable_loader(config)
    refuse_overreach(config, admin)
    with warehouse.database_errors_as("making the roles"), warehouse.transaction(conn) as cur:
        steps = plan(cur, config)
        for step in steps:
            cur.execute(step.sql, step.parameters)
            log.info("%s", step.what)
    return steps


def setup(config_path, dry_run=False):
    """Make the roles the config at config_path names, as its admin; dry_run: print them."""
    config = load_config(config_path)
    mask_secrets(config.secrets())
    conn, admin = admin_connection(config)
    try:
        if dry_run:
            refuse_unusable_loader(config)
            refuse_overreach(config, admin)
            with warehouse.database_errors_as("reading the roles"), warehouse.transaction(conn) as cur:
                for step in plan(cur, config):
                    print(masked(f"-- {step.what}\n{step.sql};\n"))
            return
        make_roles(conn, config, admin)
    finally:
        conn.close()


def build_parser():
    parser = cli.parser_for(__doc__)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the statements it would send; change nothing"
    )
    return parser


def main(argv=None):
    args, exit_code = cli.parse(build_parser(), argv)
    if args is None:
        return exit_code
    return cli.run(lambda parsed: setup(parsed.config, parsed.dry_run), args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
