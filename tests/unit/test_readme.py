"""The README and docs/ stand on their own and match the code.

Every module is in the Layout, every file they name exists, every link resolves inside the repository, and the
README's benchmark tables are the newest run's in bench/RESULTS.md.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def layout_block():
    section = README.split("## Layout", 1)[1]
    return section.split("```", 2)[1]


def test_every_module_is_in_the_readme_layout():
    block = layout_block()
    packages = ("spark_jobs", "summary_airflow")
    modules = [p for folder in packages for p in (ROOT / folder).rglob("*.py") if p.name != "__init__.py"]
    missing = [str(p.relative_to(ROOT)) for p in modules if not re.search(rf"\b{re.escape(p.name)}\b", block)]
    assert missing == []
    packages = {p.parent.name for p in modules if p.parent.name not in ("spark_jobs", "summary_airflow")}
    assert all(f"{name}/" in block for name in packages)


def test_links_stay_inside_the_repository_and_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_every_python_file_the_docs_name_exists():
    """A module renamed or removed leaves no stale name in the README or docs/ (``core/x.py`` is under spark_jobs/)."""
    skip = {".venv", ".git", "build", "node_modules"}
    files = [p.relative_to(ROOT) for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]
    names = {p.name for p in files}
    stale = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for mention in sorted(set(re.findall(r"(?<![\w/.])((?:[a-z_]+/)*[a-z_0-9]+\.py)\b", page.read_text()))):
            if "/" in mention:
                bases = (ROOT, ROOT / "spark_jobs", ROOT / "summary_airflow", ROOT / "tests")
                found = any((base / mention).is_file() for base in bases)
            else:
                found = mention in names
            if not found:
                stale.append(f"{page.relative_to(ROOT)}: {mention}")
    assert stale == []


def markdown_tables(text):
    """Every markdown table of ``text`` (lines starting with ``|``), as its header and its rows of stripped cells."""
    tables, lines = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            lines.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif lines:
            if len(lines) >= 2 and all(set(cell) <= set("-: ") for cell in lines[1]):
                tables.append((lines[0], lines[2:]))
            lines = []
    return tables


def benchmark_differences(readme, results):
    """How the README's tables under "How fast it is" differ from the newest run in ``results`` (bench/RESULTS.md):
    the part bench/run.py writes above its raw results, its run's date and its tables. The README may leave
    columns out, nothing else."""
    newest = results.split("Raw results:", 1)[0]
    when = re.search(r"^Run (\d{4}-\d\d-\d\d \d\d:\d\d)", newest, re.M)
    if not when:
        return ["bench/RESULTS.md does not start with 'Run YYYY-MM-DD HH:MM', as bench/run.py writes it"]
    section = readme.split("## How fast it is", 1)[1].split("\n## ", 1)[0]
    ours, theirs = markdown_tables(section), markdown_tables(newest)
    problems = [] if when.group(1) in section else [f"the README does not name the run of {when.group(1)}"]
    if len(ours) != len(theirs) or not ours:
        return [*problems, f"the README shows {len(ours)} tables, the newest run has {len(theirs)}"]
    for number, ((header, rows), (full_header, full_rows)) in enumerate(zip(ours, theirs, strict=True), 1):
        unknown = [name for name in header if name not in full_header]
        if unknown:
            problems.append(f"table {number}: columns not in bench/RESULTS.md: {unknown}")
            continue
        columns = [full_header.index(name) for name in header]
        expected = [[row[i] for i in columns] for row in full_rows]
        if len(rows) != len(expected):
            problems.append(f"table {number}: {len(rows)} rows, the newest run has {len(expected)}")
        problems += [f"table {number}: README {r} != RESULTS {e}" for r, e in zip(rows, expected, strict=False) if r != e]
    return problems


def test_the_readme_shows_the_newest_benchmark_tables():
    assert benchmark_differences(README, (ROOT / "bench" / "RESULTS.md").read_text()) == []


def test_a_benchmark_table_that_differs_is_found():
    results = "Run 2026-01-02 03:04 UTC.\n\n| a | b | c |\n|---|---|---|\n| x | 2 | 3 |\n\nRaw results:\n| a |\n|---|\n"
    readme = "## How fast it is\n\nThe run of 2026-01-02 03:04 UTC:\n\n| a | c |\n|---|---|\n| x | 3 |\n\n## Next\n"
    assert benchmark_differences(readme, results) == []
    assert benchmark_differences(readme.replace("| x | 3 |", "| x | 4 |"), results) == [
        "table 1: README ['x', '4'] != RESULTS ['x', '3']"
    ]
    assert benchmark_differences(readme.replace("01-02", "01-01"), results) == [
        "the README does not name the run of 2026-01-02 03:04"
    ]
    assert benchmark_differences(readme.replace("| a | c |", "| a | d |"), results) == [
        "table 1: columns not in bench/RESULTS.md: ['d']"
    ]
