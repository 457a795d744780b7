"""The project is an installed package: importable from anywhere, with no sys.path edits of its own."""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("spark_jobs", "summary_airflow", "dags", "plugins", "tests", "bench", "bin")


def test_both_packages_import_from_any_working_directory(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import spark_jobs, summary_airflow; print(spark_jobs.__file__); print(summary_airflow.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    files = [Path(line) for line in result.stdout.split()]
    assert files == [ROOT / "spark_jobs" / "__init__.py", ROOT / "summary_airflow" / "__init__.py"]


def test_nothing_edits_sys_path():
    edit = re.compile(r"sys\.path\s*(\.\s*(insert|append|extend)\s*\(|\[[^\]]*\]\s*=)|PYTHONPATH")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in SOURCE_DIRS
        for path in sorted((ROOT / folder).rglob("*"))
        if path.is_file() and path.suffix in (".py", "") and path != Path(__file__)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if edit.search(line)
    ]
    assert offenders == []


def test_the_entry_scripts_folder_shadows_no_other_module():
    """spark-submit runs spark_jobs/summary_pipeline.py as a script, which puts spark_jobs/ first on sys.path:
    a module there named like a standard or installed module would replace it for every library."""
    ours = {p.stem for p in (ROOT / "spark_jobs").glob("*.py")} - {"__init__"}
    installed = set(importlib.metadata.packages_distributions())
    assert sorted(ours & (set(sys.stdlib_module_names) | installed)) == []


def _imports(path):
    import ast

    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_layers_import_only_downwards():
    """core may not reach storage or stages, storage may not reach stages, and the shared top level
    (what the Airflow side imports) imports neither Spark nor the sub-packages at module level."""
    package = ROOT / "spark_jobs"
    rules = {"core": ("spark_jobs.storage", "spark_jobs.stages"), "storage": ("spark_jobs.stages",)}
    offenders = []
    for layer, forbidden in rules.items():
        for path in (package / layer).glob("*.py"):
            offenders += [f"{path.name} imports {m}" for m in _imports(path) if m.startswith(forbidden)]
    shared = ["names", "config", "catalogs", "months", "errors", "report", "sqltext"]
    for name in shared:
        top_level = [m for m in _imports(package / f"{name}.py") if m.split(".")[0] == "pyspark" or m.count(".") >= 2]
        offenders += [f"{name}.py imports {m}" for m in top_level]
    assert offenders == []
