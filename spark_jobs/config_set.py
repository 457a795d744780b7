"""The configs of one deployment, judged together: each on its own, then the names and tables they share.

The DAG factory, the pools, the status API and ``summary-validate`` all load
configs through here, so a config the validator passes is one the DAG factory
loads. Spark-free and Airflow-free.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from spark_jobs.catalogs import TableKey, same_table_problems, table_roles
from spark_jobs.config import SummaryConfig, load_config
from spark_jobs.errors import ConfigError


@dataclass(frozen=True)
class LoadedConfigs:
    configs: tuple[SummaryConfig, ...]  # in the order given (a folder's: by file name)
    errors: tuple[ConfigError, ...]  # one per bad file, by path


def load_all(folder: Path) -> LoadedConfigs:
    """Every config of ``folder`` (its ``*.json`` files) that is valid on its own and clashes with no other."""
    return load_files(sorted(folder.glob("*.json")))


def load_files(paths: Iterable[Path]) -> LoadedConfigs:
    """Every config of ``paths`` that is valid on its own and shares no name or written table with another one.

    Two (or more) configs claiming one name (one set of DAG ids) or one written table are all refused, each
    error naming the others, whatever the file order: no config takes over another's DAGs by sorting first.
    """
    candidates: list[SummaryConfig] = []
    errors: dict[str, ConfigError] = {}
    for path in paths:
        try:
            cfg = load_config(path)
            problems = same_table_problems(cfg)
        except ConfigError as exc:
            errors[str(path)] = exc
            continue
        except Exception as exc:  # noqa: BLE001  # load_config reports everything; this is the last boundary
            errors[str(path)] = ConfigError(path, [f"cannot load the file: {type(exc).__name__}"])
            continue
        if problems:
            errors[str(path)] = ConfigError(path, problems)
            continue
        candidates.append(cfg)
    clashes = _clashes(candidates)
    configs = []
    for cfg in candidates:
        if clashes.get(cfg.path):
            errors[cfg.path] = ConfigError(cfg.path, clashes[cfg.path])
        else:
            configs.append(cfg)
    return LoadedConfigs(tuple(configs), tuple(errors[p] for p in sorted(errors)))


def _clashes(configs: list[SummaryConfig]) -> dict[str, list[str]]:
    """Per config path: the names and tables it shares with other configs (sharing a source table is fine)."""
    by_name: dict[str, list[str]] = {}
    by_table: dict[TableKey, list[tuple[str, str]]] = {}
    for cfg in configs:
        by_name.setdefault(cfg.name, []).append(cfg.path)
        for key, role in table_roles(cfg).items():
            by_table.setdefault(key, []).append((role, cfg.path))
    problems: dict[str, list[str]] = {}
    for name, paths in by_name.items():
        for path in paths if len(paths) > 1 else ():
            others = ", ".join(p for p in paths if p != path)
            problems.setdefault(path, []).append(
                f"name: {name!r} is also the name of {others}; DAG ids must differ, so none of these configs is loaded"
            )
    for users in by_table.values():
        if len(users) < 2 or all(role == "source_table" for role, _ in users):
            continue
        for role, path in users:
            others = "; ".join(f"the {r} of {p}" for r, p in users if p != path)
            if others:
                problems.setdefault(path, []).append(
                    f"{role}: the same table as {others}; one table, one owner, so none of these configs is loaded"
                )
    return problems
