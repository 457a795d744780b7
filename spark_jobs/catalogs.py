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
            if explicit.get("type") == "jdbc" or explicit.get("catalog-impl") == "org.apache.iceberg.jdbc.JdbcCatalog":
                # Without view support (schema V0) Spark 4.1's tableExists fails on an Iceberg JDBC catalog; V1
                # migrates a V0 database in place. The catalog's own setting wins.
                conf[f"{prefix}.jdbc.schema-version"] = "V1"
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


# Spark's catalog-impl classes that PyIceberg has a catalog type for (the usual Glue / Hive / REST set-ups).
CATALOG_IMPL_TYPES = {
    "org.apache.iceberg.rest.RESTCatalog": "rest",
    "org.apache.iceberg.aws.glue.GlueCatalog": "glue",
    "org.apache.iceberg.hive.HiveCatalog": "hive",
    "org.apache.iceberg.jdbc.JdbcCatalog": "jdbc",
}
PYICEBERG_TYPES = ("rest", "glue", "hive", "jdbc")  # as Spark's `type` names them (jdbc: PyIceberg's `sql`)
# The JDBC catalogs PyIceberg reads through SQLAlchemy: JDBC URI prefix -> SQLAlchemy dialect and driver.
JDBC_DIALECTS = {"jdbc:postgresql:": "postgresql+psycopg2"}


def pyiceberg_properties(cfg: SummaryConfig, warehouse: str, catalog_name: str) -> dict[str, str]:
    """PyIceberg catalog properties equivalent to the Spark conf the jobs use for ``catalog_name``.

    The Airflow side (the source's watcher, the sensor, the status API, the page) reads the catalogs through
    these; a catalog PyIceberg cannot read is a ConfigError naming it (the DAG factory refuses such a config
    when it parses it: ``pyiceberg_problems``)."""
    prefix = f"spark.sql.catalog.{catalog_name}."
    spark = {k[len(prefix) :]: v for k, v in catalog_conf(cfg, warehouse).items() if k.startswith(prefix)}
    kind, impl = spark.pop("type", None), spark.pop("catalog-impl", None)
    if impl is not None:
        if impl not in CATALOG_IMPL_TYPES:
            known = ", ".join(sorted(CATALOG_IMPL_TYPES))
            raise ConfigError(cfg.path, [f"catalog {catalog_name}: catalog-impl {impl} cannot be read without Spark "
                                         f"(PyIceberg has no such catalog); supported: {known}"])  # fmt: skip
        kind = CATALOG_IMPL_TYPES[impl]
    if kind is not None and kind not in PYICEBERG_TYPES:
        raise ConfigError(cfg.path, [f"catalog {catalog_name}: type {kind} cannot be read without Spark (PyIceberg has "
                                     f"no {kind} catalog); use one of: {', '.join(PYICEBERG_TYPES)}"])  # fmt: skip
    properties = {k: v for k, v in spark.items() if not k.startswith("jdbc.") and k != "cache-enabled"}
    if kind == "jdbc":
        properties.update(type="sql", uri=_sqlalchemy_uri(cfg, catalog_name, spark))
        if "://" not in properties.get("warehouse", "://"):
            properties["warehouse"] = Path(properties["warehouse"]).as_uri()
    elif kind:
        properties["type"] = kind
    return properties


def pyiceberg_problems(cfg: SummaryConfig) -> list[str]:
    """Why the Airflow side could not read one of the config's catalogs (empty: it can read them all)."""
    problems = []
    for name in catalog_names(cfg):
        try:
            pyiceberg_properties(cfg, warehouse_location(cfg), name)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems


def _sqlalchemy_uri(cfg: SummaryConfig, catalog_name: str, spark: dict[str, str]) -> str:
    """The SQLAlchemy URL of a JDBC catalog's database, credentials from ``jdbc.user`` / ``jdbc.password``."""
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit

    uri = spark["uri"]
    if uri.startswith("jdbc:sqlite:"):
        return f"sqlite:///{uri[len('jdbc:sqlite:') :]}"
    dialect = next((d for jdbc, d in JDBC_DIALECTS.items() if uri.startswith(jdbc)), None)
    if dialect is None:
        known = ", ".join(["jdbc:sqlite:", *JDBC_DIALECTS])
        raise ConfigError(cfg.path, [f"catalog {catalog_name}: the JDBC URI {uri.split('?')[0]} cannot be read without "
                                     f"Spark; supported: {known}"])  # fmt: skip
    parts = urlsplit(uri[len("jdbc:") :])
    query = dict(parse_qsl(parts.query))
    user, password = spark.get("jdbc.user", query.pop("user", "")), spark.get("jdbc.password", query.pop("password", ""))
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + ("@" if user else "")
    tail = f"?{urlencode(query)}" if query else ""
    return f"{dialect}://{credentials}{parts.netloc}{parts.path}{tail}"


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
