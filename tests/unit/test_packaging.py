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
