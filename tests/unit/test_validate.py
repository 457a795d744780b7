"""``summary-validate`` judges configs as the DAG factory does, in a process that cannot import Spark or Airflow."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "configs" / "summary_config.json"

# What a CI job or a pre-commit hook without Spark and Airflow has: both refused on import.
WITHOUT_SPARK_OR_AIRFLOW = textwrap.dedent(
    """
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pyspark", "airflow"):
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, Refuse())
    from spark_jobs.validate import main
    sys.exit(main(sys.argv[1:]))
    """
)


def validate(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SPARK_OR_AIRFLOW, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def raw():
    return json.loads(EXAMPLE.read_text())


def test_the_shipped_configs_and_examples_are_valid():
    result = validate(
        ROOT / "include" / "configs", ROOT / "include" / "examples", ROOT / "tests" / "fixtures" / "configs" / "airflow"
    )
    assert result.returncode == 0, result.stderr
    valid = [line.split(": valid")[0] for line in result.stdout.splitlines() if ": valid" in line]
    expected = [*sorted((ROOT / "include" / "configs").glob("*.json")), *sorted((ROOT / "include" / "examples").glob("*.json"))]
    assert set(map(str, expected)) <= set(valid), result.stdout
    assert result.stdout.splitlines()[-1] == f"{len(valid)} valid, 0 invalid"


def test_each_problem_is_one_line_naming_the_file_and_the_key_and_the_exit_code_is_2(raw, tmp_path):
    (tmp_path / "schema.json").write_text(json.dumps(dict(raw, name="schema", history_length="36")))
    (tmp_path / "semantic.json").write_text(json.dumps(dict(raw, name="semantic", primary_column="no_such_column")))
    (tmp_path / "first.json").write_text(json.dumps(dict(raw, name="cards")))  # these two claim one name
    (tmp_path / "second.json").write_text(
        json.dumps(dict(raw, name="cards", destination_table="db.other", latest_history_table="db.other_l"))
    )
    (tmp_path / "fine.json").write_text(
        json.dumps(dict(raw, name="fine", destination_table="db.fine", latest_history_table="db.fine_l"))
    )
    result = validate(tmp_path, tmp_path / "missing.json")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    problems = result.stderr.splitlines()
    assert problems[-1] == "1 valid, 5 invalid"
    by_file = {}
    for line in problems[:-1]:
        file, _, problem = line.partition(": ")
        by_file.setdefault(Path(file).name, []).append(problem)
    assert sorted(by_file) == ["first.json", "missing.json", "schema.json", "second.json", "semantic.json"]
    assert by_file["schema.json"][0].startswith("history_length: ")
    assert any(p.startswith("primary_column: ") and "no_such_column" in p for p in by_file["semantic.json"]), by_file
    assert by_file["first.json"][0].startswith("name: 'cards' is also the name of ") and "second.json" in by_file["first.json"][0]
    assert by_file["missing.json"] == ["no such file or folder"]
    assert result.stdout.strip() == f"{tmp_path / 'fine.json'}: valid (name 'fine', writes db.fine and db.fine_l)"


def test_the_schema_is_printed_for_editors_and_a_config_may_name_it():
    result = validate("--schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema == json.loads((ROOT / "spark_jobs" / "config_schema.json").read_text())
    assert schema["properties"]["$schema"]["type"] == "string"
    example = json.loads((ROOT / "include" / "examples" / "minimal.json").read_text())
    assert (ROOT / "include" / "examples" / example["$schema"]).resolve() == ROOT / "spark_jobs" / "config_schema.json"
