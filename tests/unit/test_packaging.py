"""The project is an installed package: importable from anywhere, with no sys.path edits of its own."""

import ast
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
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


# The Spark-free top level of spark_jobs: what the Airflow side may import, besides AIRFLOW_LOWER_MODULES.
SHARED = ["names", "config", "config_set", "catalogs", "months", "errors", "report", "sqltext", "ingest_paths", "validate"]
# The only modules of spark_jobs' sub-packages the Airflow side may import: each is Spark-free at import.
AIRFLOW_LOWER_MODULES = (
    "spark_jobs.storage.runlock",
    "spark_jobs.storage.jars",
    "spark_jobs.storage.class_archive",
    "spark_jobs.storage.redaction",
    "spark_jobs.core.expressions",
)
AIRFLOW_DIRS = ("summary_airflow", "dags", "plugins")
TABLE_CALLS = ("table", "tableExists", "sql", "writeTo", "saveAsTable", "insertInto")  # spark.table(...), df.writeTo(...)
TABLE_PROPERTIES = ("read", "readStream", "write", "writeStream")  # spark.read.parquet(...), df.write.saveAsTable(...)


def _module_file(module):
    """The file of a spark_jobs module (``spark_jobs.storage`` -> its ``__init__.py``), or None for any other name."""
    if module.split(".")[0] != "spark_jobs":
        return None
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(node):
    """The modules an import statement names, with ``from package import module`` as that module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert node.level == 0, f"a relative import ({ast.unparse(node)}): the tests below follow absolute names only"
    modules = [node.module]
    modules += [f"{node.module}.{alias.name}" for alias in node.names if _module_file(f"{node.module}.{alias.name}")]
    return modules


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_imports(path):
    """The modules ``path`` imports when it is imported: not inside functions, not under ``if TYPE_CHECKING:``."""
    modules = []

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules.extend(_imported_modules(node))
            elif isinstance(node, ast.If):
                visit(node.orelse if _is_type_checking(node.test) else [*node.body, *node.orelse])
            elif isinstance(node, (ast.Try, ast.With, ast.ClassDef)):
                visit(node.body)
                for extra in ("handlers", "orelse", "finalbody"):
                    for part in getattr(node, extra, []):
                        visit(part.body if isinstance(part, ast.ExceptHandler) else [part])

    visit(ast.parse(path.read_text()).body)
    return modules


def _spark_at_import(module):
    """Chains ``module -> ... -> pyspark`` of imports made when ``module`` is imported (its packages included)."""
    chains, seen, todo = [], set(), [(module, (module,))]
    while todo:
        name, chain = todo.pop()
        parts = name.split(".")
        for package in [".".join(parts[:i]) for i in range(1, len(parts))] + [name]:
            if package in seen or _module_file(package) is None:
                continue
            seen.add(package)
            for imported in _import_time_imports(_module_file(package)):
                if imported.split(".")[0] in ("pyspark", "py4j"):
                    chains.append(" -> ".join((*chain, imported)))
                elif _module_file(imported):
                    todo.append((imported, (*chain, imported)))
    return chains


def test_the_airflow_side_imports_only_the_spark_free_modules_of_spark_jobs():
    """summary_airflow, the DAG files and the plugin import the Spark-free top level and a few named lower modules."""
    allowed = {"spark_jobs", *(f"spark_jobs.{name}" for name in SHARED), *AIRFLOW_LOWER_MODULES}
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno} imports {module}"
        for folder in AIRFLOW_DIRS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for module in _imported_modules(node)
        if module.split(".")[0] == "spark_jobs" and module not in allowed
    ]
    assert offenders == []


def test_the_lower_modules_the_airflow_side_imports_import_no_spark():
    """Each of AIRFLOW_LOWER_MODULES, and every spark_jobs module it imports in turn, imports neither pyspark nor
    py4j when it is imported (inside functions and under TYPE_CHECKING they may)."""
    assert all(_module_file(module) for module in AIRFLOW_LOWER_MODULES)
    assert [chain for module in AIRFLOW_LOWER_MODULES for chain in _spark_at_import(module)] == []


def test_the_import_time_scan_sees_spark_where_it_is():
    """The scan above finds pyspark at module level, and looks past functions and TYPE_CHECKING blocks."""
    assert "spark_jobs.storage.tables -> pyspark.sql" in _spark_at_import("spark_jobs.storage.tables")
    assert _spark_at_import("spark_jobs.storage.iceberg") == []  # pyspark only under TYPE_CHECKING
    assert any(chain.endswith("-> pyspark.sql") for chain in _spark_at_import("spark_jobs.stages.runs"))


def test_the_core_reads_and_writes_no_tables():
    """spark_jobs.core is Column and DataFrame -> DataFrame functions: no spark.table, spark.sql, reader or writer."""
    offenders = []
    for path in sorted((ROOT / "spark_jobs" / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in TABLE_CALLS:
                offenders.append(f"{path.name}:{node.lineno} calls .{node.func.attr}()")
            elif isinstance(node, ast.Attribute) and node.attr in TABLE_PROPERTIES:
                offenders.append(f"{path.name}:{node.lineno} uses .{node.attr}")
    assert offenders == []


WRITE_CALLS = ("writeTo", "mergeInto", "saveAsTable", "insertInto", "open", "publish", "discard")  # + RunBranches' steps
WRITE_STATEMENTS = ("DELETE", "INSERT", "MERGE", "UPDATE", "ALTER", "CREATE", "DROP")


def _sql_text_start(call):
    """The first literal characters of the SQL text a ``.sql(...)`` call passes ('' when not literal)."""
    if not call.args:
        return ""
    text = call.args[0]
    if isinstance(text, ast.JoinedStr) and text.values and isinstance(text.values[0], ast.Constant):
        return str(text.values[0].value)
    return str(text.value) if isinstance(text, ast.Constant) else ""


def test_the_stages_commit_nothing_themselves():
    """stages/ say what to write; storage/ writes and commits it (the branches' block, the writers, the
    classifications): no writer, MERGE, SQL statement that changes a table, or a step of the commit protocol
    called from a stage. Maintenance's CALLs of Iceberg's procedures are its job, and read-only SQL is fine."""
    offenders = []
    for path in sorted((ROOT / "spark_jobs" / "stages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr in WRITE_CALLS:
                offenders.append(f"{path.name}:{node.lineno} calls .{node.func.attr}()")
            elif node.func.attr == "sql" and _sql_text_start(node).lstrip().upper().startswith(WRITE_STATEMENTS):
                offenders.append(f"{path.name}:{node.lineno} runs {_sql_text_start(node).split()[0]}")
    assert offenders == []


def test_the_layers_import_only_downwards():
    """core may not reach storage or stages, storage may not reach stages, and the shared top level
    (what the Airflow side imports) imports neither Spark nor the sub-packages at module level."""
    package = ROOT / "spark_jobs"
    rules = {"core": ("spark_jobs.storage", "spark_jobs.stages"), "storage": ("spark_jobs.stages",)}
    offenders = []
    for layer, forbidden in rules.items():
        for path in (package / layer).glob("*.py"):
            offenders += [f"{path.name} imports {m}" for m in _imports(path) if m.startswith(forbidden)]
    for name in SHARED:
        top_level = [m for m in _imports(package / f"{name}.py") if m.split(".")[0] == "pyspark" or m.count(".") >= 2]
        offenders += [f"{name}.py imports {m}" for m in top_level]
    assert offenders == []


def test_each_catalog_extra_names_a_pyiceberg_extra_that_exists_and_the_readme_names_it():
    from importlib.metadata import metadata

    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    catalogs = {name: deps for name, deps in extras.items() if name.startswith("catalogs-")}
    assert sorted(catalogs) == ["catalogs-glue", "catalogs-hive", "catalogs-postgres"]
    provided = set(metadata("pyiceberg").get_all("Provides-Extra"))
    for name, deps in catalogs.items():
        [dependency] = deps
        assert dependency.startswith("pyiceberg[") and dependency.split("[")[1].split("]")[0] in provided, (name, deps)
        assert name in (ROOT / "README.md").read_text(), name


def test_one_version_for_the_package_its_reports_and_its_changelog():
    from importlib.metadata import version

    from spark_jobs import __version__
    from spark_jobs.report import RunReport

    installed = version("summary-pipeline")  # what pip read from pyproject.toml's dynamic version
    assert installed == __version__
    assert RunReport(mode="forward", config="c.json", run_id="r").as_dict()["version"] == installed
    headings = [line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")]
    assert headings[0].split()[1] == installed, "the newest CHANGELOG entry is this version"


def test_the_image_installs_no_test_tool_and_the_extras_match_the_pins():
    import tomllib

    def pinned(name):
        lines = (ROOT / name).read_text().splitlines()
        return {line.split("==")[0].split("[")[0].lower() for line in lines if "==" in line and not line.startswith("#")}

    runtime, dev = pinned("requirements.txt"), pinned("requirements-dev.txt")
    assert not runtime & {"pytest", "hypothesis", "ruff", "mypy", "moto", "flask", "psutil"}, runtime
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text() and not runtime & dev
    assert (
        "COPY requirements.txt" in (ROOT / "Dockerfile").read_text()
        and "requirements-dev" not in (ROOT / "Dockerfile").read_text()
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    name = lambda spec: spec.split(">")[0].split("<")[0].split("=")[0].split("[")[0].lower()  # noqa: E731
    assert {name(d) for d in project["dependencies"]} <= runtime  # what every part needs is pinned for the image
    assert {name(d) for d in extras["airflow"] + extras["spark"]} <= runtime
    assert {name(d) for d in extras["dev"] if not d.startswith("summary-pipeline")} <= dev
    assert not {name(d) for d in project["dependencies"]} & {"apache-airflow", "pyspark"}, "Airflow and Spark are extras"
