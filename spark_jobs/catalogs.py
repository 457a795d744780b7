"""The catalogs a config uses, as Spark conf and as PyIceberg properties, without Spark.

Every catalog named in the config's table identifiers (``local`` in
``local.db.summary``) and the default catalog (used by two-part names) is an
Iceberg ``SparkCatalog``. Without a ``catalog`` section each one is an Iceberg
JDBC catalog on one SQLite file inside the warehouse directory: commits are
atomic compare-and-swap, unlike Iceberg's Hadoop catalog on a local disk. A
``catalog.catalogs.<name>`` section replaces that with any Iceberg catalog
(REST, Hive, Glue, Hadoop, Nessie, ...) through plain Spark conf, and the
environment variable ``SUMMARY_CATALOGS`` (the same JSON) overrides it.

The Airflow side reads the same catalogs through PyIceberg (``pyiceberg_properties``),
so this module must not import ``pyspark``.
"""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spark_jobs.config import SummaryConfig
from spark_jobs.errors import ConfigError
from spark_jobs.names import CATALOGS_ENV, WAREHOUSE_ENV

ICEBERG_CATALOG = "org.apache.iceberg.spark.SparkCatalog"
SQLITE_FILE = "iceberg_catalog.sqlite"

# What tells two catalogs apart (_catalog_identity), and a table as Spark and Iceberg tell tables apart (table_key).
CatalogIdentity = tuple[str, str] | tuple[tuple[str, str], ...]
TableKey = tuple[CatalogIdentity, str]


def warehouse_location(cfg: SummaryConfig, cli_value: str | None = None) -> str:
    """--warehouse, else $SUMMARY_WAREHOUSE, else the config's catalog.warehouse, else ./warehouse."""
    chosen = cli_value or os.environ.get(WAREHOUSE_ENV) or cfg.catalog.warehouse or "warehouse"
    if "://" in chosen:
        return chosen
    return str(Path(chosen).expanduser().resolve())


def explicit_catalogs(cfg: SummaryConfig) -> dict[str, dict[str, Any]]:
    """The config's ``catalog.catalogs``, overridden per catalog by $SUMMARY_CATALOGS (JSON of the same shape).

    The environment wins so that one config serves a laptop and a cluster (docker-compose wires it).
    """
    catalogs = dict(cfg.catalog.catalogs)
    text = os.environ.get(CATALOGS_ENV)
    if text:
        try:
            overrides = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"${CATALOGS_ENV}", [f"invalid JSON: {exc.msg} at character {exc.pos}"]) from None
        if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
            raise ConfigError(f"${CATALOGS_ENV}", ["must be a JSON object: catalog name -> {property: value}"])
        catalogs.update(overrides)
    return catalogs


def catalog_names(cfg: SummaryConfig) -> list[str]:
    names = [cfg.catalog.default]
    named = [split_identifier(t, cfg.catalog.default)[0] for t in cfg.table_identifiers]
    for name in (*named, *explicit_catalogs(cfg)):
        if name not in names:
            names.append(name)
    return names


def catalog_conf(cfg: SummaryConfig, warehouse: str) -> dict[str, str]:
    """Spark conf entries that define every catalog the config uses."""
    conf = {"spark.sql.defaultCatalog": cfg.catalog.default}
    explicit_all = explicit_catalogs(cfg)
    for name in catalog_names(cfg):
        prefix = f"spark.sql.catalog.{name}"
        conf[prefix] = ICEBERG_CATALOG
        # Every run must see other runs' commits at once: the lock, recovery and
        # backfill marks depend on it, so the per-session table cache is off.
        conf[f"{prefix}.cache-enabled"] = "false"
        explicit = explicit_all.get(name)
        if explicit is not None:
            for key, value in explicit.items():
                conf[f"{prefix}.{key}"] = conf_value(value)
            continue
        conf[f"{prefix}.type"] = "jdbc"
        conf[f"{prefix}.uri"] = f"jdbc:sqlite:{warehouse}/{SQLITE_FILE}"
        conf[f"{prefix}.warehouse"] = f"{warehouse}/{name}"
        conf[f"{prefix}.jdbc.schema-version"] = "V1"
        # Several processes share the SQLite file: readers do not block the writer (WAL), and a
        # writer waits for the write lock instead of failing.
        conf[f"{prefix}.jdbc.journal_mode"] = "WAL"
        conf[f"{prefix}.jdbc.busy_timeout"] = "60000"
    return conf


def conf_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def split_identifier(identifier: str, default_catalog: str | Callable[[], str]) -> tuple[str, str]:
    """(catalog, namespace.table) of a table identifier; two-part names live in the default catalog: the config's
    ``catalog.default`` (Spark's ``spark.sql.defaultCatalog``), or a function returning it, called only for a
    two-part name (asking Spark's conf costs a JVM round trip)."""
    parts = identifier.split(".")
    if len(parts) == 3:
        return parts[0], ".".join(parts[1:])
    return (default_catalog() if callable(default_catalog) else default_catalog), identifier


def pyiceberg_properties(cfg: SummaryConfig, warehouse: str, catalog_name: str) -> dict[str, str]:
    """PyIceberg catalog properties equivalent to the Spark conf the jobs use for ``catalog_name``."""
    prefix = f"spark.sql.catalog.{catalog_name}."
    spark = {k[len(prefix) :]: v for k, v in catalog_conf(cfg, warehouse).items() if k.startswith(prefix)}
    kind = spark.pop("type", None)
    properties = {k: v for k, v in spark.items() if not k.startswith("jdbc.") and k != "cache-enabled"}
    if kind == "jdbc":
        uri = spark["uri"]
        if not uri.startswith("jdbc:sqlite:"):
            raise ConfigError(cfg.path, [f"catalog {catalog_name}: only SQLite JDBC URIs can be read without Spark, not {uri}"])
        properties.update(type="sql", uri=f"sqlite:///{uri[len('jdbc:sqlite:') :]}")
        if "://" not in properties.get("warehouse", "://"):
            properties["warehouse"] = Path(properties["warehouse"]).as_uri()
    elif kind:
        properties["type"] = kind
    return properties


def _catalog_identity(cfg: SummaryConfig, name: str) -> CatalogIdentity:
    """What makes two catalog names one catalog: the same connection ($SUMMARY_CATALOGS included)."""
    explicit = {k.lower(): v for k, v in explicit_catalogs(cfg).items()}.get(name.lower())
    if explicit is None:
        return ("embedded", name.lower())  # a JDBC catalog of its own name in the warehouse's SQLite file
    return tuple(sorted((k, str(v)) for k, v in explicit.items() if k in ("type", "catalog-impl", "uri", "warehouse")))


def table_key(cfg: SummaryConfig, identifier: str) -> TableKey:
    """A table as Spark and Iceberg tell tables apart: the catalog it is really in, and its name, case-insensitively."""
    catalog, name = split_identifier(identifier, cfg.catalog.default)
    return (_catalog_identity(cfg, catalog), name.lower())


def table_roles(cfg: SummaryConfig) -> dict[TableKey, str]:
    """{table_key: what the table is to this config} for every table the config reads or writes."""
    roles = {table_key(cfg, cfg.source_table): "source_table"}
    roles.update({table_key(cfg, t): f"derived table {t}" for t in cfg.derived_tables})
    roles[table_key(cfg, cfg.latest_table)] = "latest_history_table"
    roles[table_key(cfg, cfg.summary_table)] = "destination_table"
    return roles


def same_table_problems(cfg: SummaryConfig) -> list[str]:
    """Two of the config's own tables that are one table once catalogs are resolved (e.g. by $SUMMARY_CATALOGS)."""
    seen: dict[TableKey, str]
    seen, problems = {}, []
    names = [
        ("destination_table", cfg.summary_table),
        ("latest_history_table", cfg.latest_table),
        ("source_table", cfg.source_table),
        *[(f"derived table {t}", t) for t in cfg.derived_tables],
    ]
    for role, identifier in names:
        key = table_key(cfg, identifier)
        if key in seen:
            problems.append(f"{role} {identifier!r} is the same table as {seen[key]} (catalogs resolved with ${CATALOGS_ENV})")
        seen.setdefault(key, f"{role} {identifier!r}")
    return problems
