"""docs/operations.md's "Environment variables" tables name every variable the code reads, and nothing else.

The code's ``SUMMARY_*`` names are found as string literals (``ast``), wherever they live: in ``os.environ.get``
calls, in constants such as ``names.WAREHOUSE_ENV``, or as a prefix (``SUMMARY_ALERT_``), which the table holds as
one row ending in ``*``. The shell, make and compose files are scanned as text.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
ENV_LITERAL = re.compile(r"^SUMMARY_[A-Z0-9_]+$")
ENV_IN_TEXT = re.compile(r"\bSUMMARY_[A-Z0-9_]+")
PYTHON_DIRS = ("spark_jobs", "summary_airflow", "dags", "plugins", "tests", "bench")
TEXT_FILES = ("Makefile", "docker-compose.yaml", "Dockerfile", ".env.example", "bin/airflow", "bin/dag-run")
ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*\*?)`[^|]*\|(.*)\|\s*$")


def env_section():
    text = OPERATIONS.read_text()
    assert "\n## Environment variables\n" in text
    return text.split("\n## Environment variables\n", 1)[1].split("\n## ", 1)[0]


def table_rows():
    """{variable or prefix*: [read by, default, what it does]} of every row of the section's tables."""
    rows = {}
    for line in env_section().splitlines():
        match = ROW.match(line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} has two rows"
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def env_literals():
    """{SUMMARY_* literal: where it first occurs} over the Python sources (the tests' own file left out)."""
    found = {}
    for folder in PYTHON_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(__file__):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_LITERAL.match(node.value):
                    found.setdefault(node.value, f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")
    for name in TEXT_FILES:
        path = ROOT / name
        if path.exists():
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for env in ENV_IN_TEXT.findall(line):
                    found.setdefault(env, f"{name}:{number}")
    return found


def in_table(name, rows):
    return name in rows or any(row.endswith("*") and name.startswith(row[:-1]) for row in rows)


def test_the_scan_finds_the_variables_where_they_are():
    found = env_literals()
    assert found["SUMMARY_WAREHOUSE"].startswith("spark_jobs/")  # a constant in names.py
    assert "SUMMARY_ALERT_" in found  # the alerts' prefix, from config.py
    assert "SUMMARY_FAULT_FULL" in found  # read by the tests only
    assert "SUMMARY_ALERT_CARDS_WEBHOOK" in found and in_table("SUMMARY_ALERT_CARDS_WEBHOOK", table_rows())


def test_every_variable_the_code_reads_is_in_the_table():
    rows = table_rows()
    missing = sorted(f"{name} ({where})" for name, where in env_literals().items() if not in_table(name, rows))
    assert missing == [], "add a row to docs/operations.md, section Environment variables"


def test_every_row_names_a_variable_the_code_reads_and_says_all_four_things():
    found = env_literals()
    sources = "\n".join(
        path.read_text(errors="replace")
        for folder in PYTHON_DIRS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != Path(__file__)
    ) + "\n".join((ROOT / name).read_text() for name in TEXT_FILES if (ROOT / name).exists())
    stale, incomplete = [], []
    for row, cells in table_rows().items():
        name = row.rstrip("*")
        known = any(env.startswith(name) for env in found) if row.endswith("*") else name in found or name in sources
        if not known:
            stale.append(row)
        if len(cells) != 3 or not all(cells):
            incomplete.append(row)
    assert stale == [], "rows naming a variable nothing reads"
    assert incomplete == [], "every row gives: read by, default, what it does"
