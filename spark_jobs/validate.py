"""``summary-validate``: judge configs as the DAG factory and the jobs will, without Spark or Airflow.

For CI and pre-commit hooks: the JSON Schema, the semantic rules and the
clashes between the configs given together (two configs claiming one name or
one written table). One line per problem, ``file: key: problem``; exit 0 when
every config is valid, 2 otherwise. Only the Spark analyzer's check of the
config's expressions needs a JVM; it still runs at job start.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from spark_jobs.config_set import load_files
from spark_jobs.errors import ConfigError
from spark_jobs.names import CONFIGS_DIR_ENV

EXIT_INVALID = 2  # as the jobs' exit code for a bad config


def config_files(paths: Sequence[Path]) -> tuple[list[Path], list[ConfigError]]:
    """The config files named, a folder standing for its ``*.json`` files; a path that is neither is an error."""
    files: list[Path] = []
    missing: list[ConfigError] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            files.extend(found)
            if not found:
                missing.append(ConfigError(path, ["no *.json config in this folder"]))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(ConfigError(path, ["no such file or folder"]))
    return files, missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="summary-validate",
        description="Check summary pipeline configs without Spark or Airflow: schema, semantic rules, and the names "
        "and tables configs given together share. Exit 0: all valid; 2: a problem, one line each (file: key: problem).",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help=f"config files, or folders of them (*.json); default: ${CONFIGS_DIR_ENV}, else include/configs",
    )
    parser.add_argument("--schema", action="store_true", help="print the config's JSON Schema (for editors) and exit")
    args = parser.parse_args(argv)
    if args.schema:
        print(resources.files("spark_jobs").joinpath("config_schema.json").read_text(encoding="utf-8"), end="")
        return 0
    paths = args.paths or [Path(os.environ.get(CONFIGS_DIR_ENV, "include/configs"))]
    files, missing = config_files(paths)
    loaded = load_files(files)
    errors = sorted([*missing, *loaded.errors], key=lambda e: e.path)
    for error in errors:
        for problem in error.problems:
            print(f"{error.path}: {problem}", file=sys.stderr)
    for cfg in loaded.configs:
        print(f"{cfg.path}: valid (name {cfg.name!r}, writes {cfg.summary_table} and {cfg.latest_table})")
    print(f"{len(loaded.configs)} valid, {len(errors)} invalid", file=sys.stderr if errors else sys.stdout)
    return EXIT_INVALID if errors else 0


if __name__ == "__main__":
    sys.exit(main())
