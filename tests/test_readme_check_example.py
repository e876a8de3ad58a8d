"""The custom check the docs show (docs/guarantees.md, "Data quality checks") works as printed:
on the default local target, and with SQL Redshift can run too."""

import configparser
import re

from conftest import ROOT
from test_redshift_sql import redshift_problems

import etl
import sql_queries

# Redshift's date functions that run on the leader node only, so a query reading a table
# fails with them: https://docs.aws.amazon.com/redshift/latest/dg/c_SQL_functions_leader_node_only.html
REDSHIFT_LEADER_NODE_ONLY = ("AGE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "LOCALTIME", "ISFINITE", "NOW")
# Redshift's own, which PostgreSQL lacks: https://docs.aws.amazon.com/redshift/latest/dg/r_GETDATE.html
REDSHIFT_ONLY = ("GETDATE", "SYSDATE")


def readme_check_block():
    """The text of the README's ```ini block that declares a [CHECK ...] section."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "\n".join(document.read_text(encoding="utf-8") for document in documents)
    blocks = re.findall(r"```ini\n(.*?)```", text, re.S)
    (block,) = [block for block in blocks if re.search(r"^\[CHECK ", block, re.M)]
    return block


def readme_check():
    """(name, SQL) of the README's example check, read as the config loader reads it."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(readme_check_block())
    (section,) = parser.sections()
    return section.removeprefix("CHECK "), parser[section]["SQL"]


def test_readme_check_sql_uses_only_functions_both_targets_have():
    _, sql = readme_check()
    assert redshift_problems(sql) == []
    for name in REDSHIFT_LEADER_NODE_ONLY + REDSHIFT_ONLY:
        assert not re.search(rf"\b{name}\b", sql, re.I), f"{name} does not run on both targets"


def test_readme_check_passes_and_catches_on_a_loaded_local_warehouse(generated, load, config_for, run, query):
    load(generated)
    config = config_for(generated)
    config.write_text(config.read_text() + "\n" + readme_check_block())  # the README's text, as is
    name, _ = readme_check()
    code, out = run(etl, "--config", config, "--check-only")
    assert code == 0, out
    assert f"checks: {len(sql_queries.quality_checks(sql_queries.WHOLE_TABLES)) + 1} passed, 0 failed" in out
    # A play dated after today: the check fails, by its name (other checks fail too: no such user).
    query(
        "INSERT INTO songplays (songplay_id, start_time, user_id, session_id, item_in_session)"
        " VALUES ('future', CURRENT_DATE + 2, 999999, 1, 1)"
    )
    code, out = run(etl, "--config", config, "--check-only")
    assert code == 1
    assert f"check failed: {name}: expected 0, found 1" in out
