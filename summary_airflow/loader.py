"""Find and load every pipeline config; a bad one is reported, never fatal to the others."""

from dataclasses import dataclass

from spark_jobs.config import load_config
from spark_jobs.errors import ConfigError


@dataclass(frozen=True)
class LoadedConfigs:
    configs: tuple  # SummaryConfig, sorted by file name
    errors: tuple  # ConfigError, one per bad file


def load_all(folder):
    configs, errors, names = [], [], {}
    for path in sorted(folder.glob("*.json")):
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if cfg.name in names:
            errors.append(ConfigError(path, [f"name: {cfg.name!r} is already used by {names[cfg.name]}; DAG ids must differ"]))
            continue
        names[cfg.name] = path
        configs.append(cfg)
    return LoadedConfigs(tuple(configs), tuple(errors))


def import_error_message(errors):
    return "invalid summary pipeline config(s); their DAGs are not loaded, every other config's are:\n" + "\n".join(
        str(e) for e in errors
    )
