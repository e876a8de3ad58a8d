"""The shape the project keeps: helpers in sparkify/ never import the scripts."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def scripts():
    """Top-level modules that run as programs."""
    return {
        path.stem
        for path in ROOT.glob("*.py")
        if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
    }


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_the_scripts_are_found():
    assert {"create_tables", "etl", "demo", "bench", "sample_data"} <= scripts()


def test_no_helper_imports_a_script():
    upward = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in (ROOT / "sparkify").glob("*.py")
        for module in imported_modules(path)
        if module in scripts()
    }
    assert not upward


# A comparison with a target's name or an engine object: code asks the engine for a
# capability instead (sparkify/engines.py), so a third engine touches one file.
ENGINE_BY_NAME = re.compile(
    r"""(==|!=|\bis\b|\bis not\b)\s*"""
    r"""(LOCAL|REDSHIFT|POSTGRES|sql_queries\.(POSTGRES|REDSHIFT)|["'](local|redshift)["'])\b"""
    r"""|\b(target|engine)\s*(==|!=)"""
)


def test_code_asks_an_engine_for_capabilities_not_its_name():
    sources = [*ROOT.glob("*.py"), *(ROOT / "sparkify").glob("*.py")]
    by_name = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        if path.name != "engines.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ENGINE_BY_NAME.search(line)
    ]
    assert by_name == []


# The source datasets are named in their registry only (sparkify/datasets.py): every
# loop and decision about them reads it, so adding one touches the registry, its SQL and
# its tests. The data-making and benchmarking scripts write folders by these names, as
# the sample data lays them out.
DATASET_NAMES = {"song_data", "log_data", "SONG_DATA", "LOG_DATA", "LOG_JSONPATH"}
WRITES_THE_SAMPLE_LAYOUT = {"sample_data.py", "demo.py", "bench.py", "datasets.py"}


def string_literals(path):
    """Every string constant in the code that is not a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_datasets_are_named_only_in_their_registry():
    sources = [*ROOT.glob("*.py"), *(ROOT / "sparkify").glob("*.py")]
    named = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sources
        if path.name not in WRITES_THE_SAMPLE_LAYOUT
        for line, text in string_literals(path)
        if text in DATASET_NAMES
    ]
    assert named == []
