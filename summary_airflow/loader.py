"""Find and load every pipeline config; a bad one is reported, never fatal to the others."""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from spark_jobs.catalogs import TableKey, same_table_problems, table_roles
from spark_jobs.config import SummaryConfig, load_config
from spark_jobs.errors import ConfigError


@dataclass(frozen=True)
class LoadedConfigs:
    configs: tuple[SummaryConfig, ...]  # sorted by file name
    errors: tuple[ConfigError, ...]  # one per bad file


def load_all(folder: Path) -> LoadedConfigs:
    """Every config of ``folder`` that is valid on its own and shares no name or written table with an earlier one."""
    names: dict[str, Path]
    tables: dict[TableKey, tuple[str, Path]]
    configs, errors, names, tables = [], [], {}, {}
    for path in sorted(folder.glob("*.json")):
        try:
            cfg = load_config(path)
            problems = same_table_problems(cfg) + _clashes(cfg, names, tables)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if problems:
            errors.append(ConfigError(path, problems))
            continue
        names[cfg.name] = path
        tables.update({key: (role, path) for key, role in table_roles(cfg).items()})
        configs.append(cfg)
    return LoadedConfigs(tuple(configs), tuple(errors))


def _clashes(cfg: SummaryConfig, names: dict[str, Path], tables: dict[TableKey, tuple[str, Path]]) -> list[str]:
    """A name or table this config shares with a config loaded before it (sharing a source table is fine)."""
    problems = []
    if cfg.name in names:
        problems.append(f"name: {cfg.name!r} is already used by {names[cfg.name]}; DAG ids must differ")
    for key, role in table_roles(cfg).items():
        if key in tables and not (role == "source_table" and tables[key][0] == "source_table"):
            other_role, other = tables[key]
            problems.append(f"{role}: the same table as the {other_role} of {other}; one table, one owner")
    return problems


def import_error_message(errors: Iterable[ConfigError]) -> str:
    return "invalid summary pipeline config(s); their DAGs are not loaded, every other config's are:\n" + "\n".join(
        str(e) for e in errors
    )
