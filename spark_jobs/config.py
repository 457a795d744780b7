"""Loading and validating a summary config (the v4 JSON format).

Validation happens in three layers, all reporting ``file: key.path: problem``:

1. JSON Schema (``config_schema.json``, shipped in the package): shapes, types,
   unknown keys.
2. Semantic checks that a schema cannot express: names that must exist, names
   that must not clash, grids that must name a rolling column.
3. Expressions: every ``mapper_expr`` must parse. Without Spark (Airflow's DAG
   parser) a lexical check catches unbalanced brackets and quotes and multiple
   statements; at job start Spark's own parser checks each expression.

The loaded :class:`SummaryConfig` is immutable and answers every "which
columns are ..." question, so no other module re-derives column lists.
"""

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from spark_jobs.errors import ConfigError, first_line
from spark_jobs.months import add_months, month_number
from spark_jobs.names import ALERT_URL_ENV_PREFIX, BOOKKEEPING_COLUMNS
from spark_jobs.sqltext import unquoted

SUPPORTED_TYPES = ("Integer", "Long", "Double", "Decimal(p,s)", "String", "Date", "Boolean")
_DECIMAL_RE = re.compile(r"^Decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_SIMPLE_SQL_TYPES = {
    "Integer": "int",
    "Long": "bigint",
    "Double": "double",
    "String": "string",
    "Date": "date",
    "Boolean": "boolean",
}

DEFAULT_HISTORY_LENGTH = 36
MAX_INITIAL_LOAD_MONTHS = 360
MAX_CONFIG_BYTES = 1024 * 1024  # a larger config file is refused unread
MAX_NAME_LENGTH = 200  # DAG ids (name + "_maintenance") stay under Airflow's 250 characters
DEFAULT_CATALOG = "local"  # the catalog of two-part table names unless catalog.default says otherwise


def sql_type(type_name: str) -> str:
    """Config type name -> Spark SQL type name (``Decimal(12,2)`` -> ``decimal(12,2)``)."""
    if type_name in _SIMPLE_SQL_TYPES:
        return _SIMPLE_SQL_TYPES[type_name]
    match = _DECIMAL_RE.match(type_name)
    if match:
        return f"decimal({int(match.group(1))},{int(match.group(2))})"
    raise ValueError(f"unsupported type {type_name!r}; supported: {', '.join(SUPPORTED_TYPES)}")


@dataclass(frozen=True)
class DerivedColumn:
    name: str
    mapper_expr: str


@dataclass(frozen=True)
class RollingColumn:
    name: str
    mapper_expr: str
    mapper_column: str
    num_cols: int
    type_name: str

    @property
    def history_column(self) -> str:
        return f"{self.name}_history"

    @property
    def sql_type(self) -> str:
        return sql_type(self.type_name)


@dataclass(frozen=True)
class GridColumn:
    name: str
    mapper_rolling_column: str
    placeholder: str
    separator: str


@dataclass(frozen=True)
class Performance:
    target_records_per_partition: int = 10_000_000
    min_partitions: int = 16
    max_partitions: int = 8192
    avg_record_size_bytes: int = 200
    snapshot_interval: int = 12
    max_file_size_mb: int = 256
    snapshot_retention_days: int = 7


@dataclass(frozen=True)
class SparkSettings:
    adaptive_enabled: bool = True
    dynamic_partition_pruning: bool = True
    skew_join_enabled: bool = True
    broadcast_threshold_mb: int = 50
    conf: dict = field(default_factory=dict)
    # small tables: stages compile less (session.QUICK_START_CONF, class_archive.QUICK_START_JAVA_OPTIONS)
    quick_start: bool = False


@dataclass(frozen=True)
class CatalogSettings:
    default: str = DEFAULT_CATALOG
    warehouse: str | None = None
    catalogs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AlertSettings:
    """Where failures and a late monthly run are reported (``airflow.alerts``); empty: nowhere."""

    webhook_url: str | None = None
    webhook_url_env: str | None = None
    webhook_timeout_seconds: int = 10
    email_to: tuple[str, ...] = ()
    smtp_conn_id: str | None = None
    from_email: str | None = None
    forward_deadline_day: int | None = None

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> "AlertSettings":
        webhook, email = raw.get("webhook", {}), raw.get("email", {})
        return cls(
            webhook_url=webhook.get("url"),
            webhook_url_env=webhook.get("url_env"),
            webhook_timeout_seconds=webhook.get("timeout_seconds", 10),
            email_to=tuple(email.get("to", ())),
            smtp_conn_id=email.get("smtp_conn_id"),
            from_email=email.get("from_email"),
            forward_deadline_day=raw.get("forward_deadline_day"),
        )

    @property
    def has_webhook(self) -> bool:
        return bool(self.webhook_url or self.webhook_url_env)


@dataclass(frozen=True)
class AirflowSettings:
    start_month: str | None = None
    end_month: str | None = None
    initial_load: dict | None = None
    backfill_schedule: str = "@hourly"
    backfill_poke_seconds: int = 60
    # An Asset watcher in the triggerer polls the source's snapshots every backfill_poke_seconds and starts the
    # backfill DAG for each unapplied one (writers outside Airflow); off: each scheduled run's sensor waits instead.
    watch_source: bool = True
    maintenance_schedule: str = "@weekly"
    retries: int = 3
    stage_timeout_minutes: int = 360
    landing_dir: str | None = None
    spark_event_log_retention_days: int = 14  # Spark event logs older than this are deleted (summary_airflow/retention.py)
    report_retention_days: int = 90  # run reports of this config's DAGs older than this are deleted
    alerts: AlertSettings = AlertSettings()
    tags: tuple = ()


@dataclass(frozen=True)
class SummaryConfig:
    path: str
    name: str
    source_table: str
    # Internal names say what each thing is; the v4 config keys they come from are in _build().
    summary_table: str  # destination_table
    latest_table: str  # latest_history_table
    month_column: str  # partition_column
    key_column: str  # primary_column
    version_column: str  # max_identifier_column
    primary_date_column: str | None
    history_length: int
    columns: dict[str, str]
    column_transformations: tuple[DerivedColumn, ...]
    inferred_columns: tuple[DerivedColumn, ...]
    coalesce_exclusion_cols: tuple[str, ...]
    date_col_list: tuple[str, ...]
    latest_history_addon_cols: tuple[str, ...]
    rolling_columns: tuple[RollingColumn, ...]
    grid_columns: tuple[GridColumn, ...]
    performance: Performance
    spark: SparkSettings
    catalog: CatalogSettings
    airflow: AirflowSettings = AirflowSettings()
    named: bool = False  # `name` was set in the file (else it is the file name's stem): tables record it

    # --- column sets, derived once -------------------------------------------------
    @cached_property
    def mapped_columns(self) -> tuple[str, ...]:
        """Every scalar column a mapped record has, in summary column order."""
        names = list(self.columns.values())
        for derived in (*self.column_transformations, *self.inferred_columns):
            if derived.name not in names:
                names.append(derived.name)
        for rolling in self.rolling_columns:
            if rolling.mapper_column not in names:
                names.append(rolling.mapper_column)
        return tuple(names)

    @cached_property
    def rolling_mapper_columns(self) -> tuple[str, ...]:
        return tuple(r.mapper_column for r in self.rolling_columns)

    @cached_property
    def history_columns(self) -> tuple[str, ...]:
        return tuple(r.history_column for r in self.rolling_columns)

    @cached_property
    def grid_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.grid_columns)

    @cached_property
    def carry_columns(self) -> tuple[str, ...]:
        """Scalars carried forward from the previous row when the winner has NULL (docs/table-contract.md §4)."""
        fixed = {self.key_column, self.month_column, self.version_column, self.primary_date_column}
        return tuple(
            c
            for c in self.mapped_columns
            if c not in fixed and c not in self.rolling_mapper_columns and c not in self.coalesce_exclusion_cols
        )

    @cached_property
    def summary_columns(self) -> tuple[str, ...]:
        """Column order of ``summary`` and ``latest_summary``."""
        return (*self.mapped_columns, *self.history_columns, *self.grid_names, *BOOKKEEPING_COLUMNS)

    @cached_property
    def max_history_length(self) -> int:
        return max((r.num_cols for r in self.rolling_columns), default=1)

    def source_column(self, destination: str) -> str:
        """The source column renamed to ``destination`` by ``columns``."""
        return next(src for src, dst in self.columns.items() if dst == destination)

    def rolling_by_name(self, name: str) -> RollingColumn:
        return next(r for r in self.rolling_columns if r.name == name)

    # --- tables the pipeline derives from the destination table -------------------
    @property
    def rejects_table(self) -> str:
        return f"{self.summary_table}_rejects"

    @property
    def staging_table(self) -> str:
        return f"{self.summary_table}_staging"

    @property
    def backfill_table(self) -> str:
        return f"{self.summary_table}_backfill"

    @property
    def control_table(self) -> str:
        return f"{self.summary_table}_control"

    @property
    def derived_tables(self) -> tuple[str, ...]:
        """The tables named after the destination that the pipeline creates, deletes from and locks."""
        return derived_tables(self.summary_table)

    @property
    def table_identifiers(self) -> tuple[str, str, str]:
        return (self.source_table, self.summary_table, self.latest_table)


DERIVED_SUFFIXES = ("_rejects", "_staging", "_backfill", "_control")


def derived_tables(destination: str) -> tuple[str, ...]:
    return tuple(f"{destination}{suffix}" for suffix in DERIVED_SUFFIXES)


def normalized_table(identifier: str, default_catalog: str) -> str:
    """``catalog.namespace.table`` in lower case: how Spark and Iceberg tell tables apart (names are case-insensitive)."""
    parts = identifier.lower().split(".")
    return ".".join(parts if len(parts) == 3 else [default_catalog.lower(), *parts])


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def load_config(path: str | Path, expression_checker: Callable[[str], str | None] | None = None) -> SummaryConfig:
    """Read, validate and return the config at ``path``; raise :class:`ConfigError` listing every problem.

    ``expression_checker(expr) -> str | None`` returns a problem for an expression
    it cannot parse; the default is the lexical check (no Spark needed).
    """
    path = Path(path)
    try:
        return _load_config(path, expression_checker)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(path, ["the JSON is nested too deeply to read"]) from None
    except Exception as exc:  # noqa: BLE001  # one file's surprise is that file's error, never the other configs'
        raise ConfigError(path, [f"cannot load the file: {type(exc).__name__}: {first_line(exc, 300)}"]) from None


def _load_config(path: Path, expression_checker: Callable[[str], str | None] | None) -> SummaryConfig:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(path, [f"the file is {size} bytes; a config may have at most {MAX_CONFIG_BYTES}"])
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)  # the file may grow between stat and read
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read file: {exc}"]) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(path, [f"the file is larger than {MAX_CONFIG_BYTES} bytes, the most a config may have"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, [f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"]) from None
    except RecursionError:
        raise ConfigError(path, ["the JSON is nested too deeply to read"]) from None
    return config_from_dict(raw, path, expression_checker)


def url_env_problem(name: str) -> str | None:
    """Why ``airflow.alerts.webhook.url_env`` may not name this variable, or None."""
    if not name.startswith(ALERT_URL_ENV_PREFIX) or len(name) == len(ALERT_URL_ENV_PREFIX) or not name.isidentifier():
        return (
            f"{name!r} is not an allowed variable: the webhook URL's variable must be named {ALERT_URL_ENV_PREFIX}<something> "
            "(letters, digits and _), so a config cannot read other environment variables"
        )
    return None


def config_from_dict(
    raw: Any, path: str | Path = "<config>", expression_checker: Callable[[str], str | None] | None = None
) -> SummaryConfig:
    checker = expression_checker or lexical_expression_problem
    problems = schema_problems(raw)
    if not problems:
        problems = semantic_problems(raw) + expression_problems(raw, checker)
    if not problems and not raw.get("name") and len(Path(path).stem) > MAX_NAME_LENGTH:
        problems.append(f"name: the file name's stem (the default name) is longer than {MAX_NAME_LENGTH} characters; set `name`")
    if problems:
        raise ConfigError(path, problems)
    return _build(raw, Path(path))


def _schema() -> dict[str, Any]:
    text = resources.files("spark_jobs").joinpath("config_schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def key_path(parts: Iterable[str | int]) -> str:
    """``['rolling_columns', 2, 'type']`` -> ``rolling_columns[2].type``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _whole_text_pattern(
    validator: jsonschema.protocols.Validator, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """JSON Schema's ``pattern`` with ECMA-262's ``$``: Python's also matches before a final line break,
    which would let ``"summary\\n"`` pass as a table name and ``"2024-02\\n"`` as a month."""
    if isinstance(instance, str) and pattern.endswith("$") and instance.endswith("\n"):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r} (it ends with a line break)")
        return
    yield from jsonschema.Draft202012Validator.VALIDATORS["pattern"](validator, pattern, instance, schema)


_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _whole_text_pattern})


def schema_problems(raw: Any) -> list[str]:
    if not isinstance(raw, dict):
        return ["(top level): the config must be a JSON object"]
    validator = _Validator(_schema())
    problems = []
    for error in sorted(validator.iter_errors(raw), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        where = key_path(list(error.absolute_path))
        problems.append(f"{where}: {_explain(error)}")
    return problems


def _explain(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        # the stubs allow any instance and schema; additionalProperties is only reported for an object and its schema
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))  # type: ignore[arg-type, union-attr]
        return f"unknown key(s) {', '.join(map(repr, extra))}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    path = list(error.absolute_path)
    if path and path[-1] == "type" and "rolling_columns" in path:
        return f"unsupported rolling column type {error.instance!r}; supported: {', '.join(SUPPORTED_TYPES)}"
    if error.validator == "pattern" and isinstance(error.instance, str):
        if path[-2:] == ["webhook", "url"]:
            return "not an http:// or https:// URL (the value is not repeated here: it may hold a token)"
        if path[-2:] == ["webhook", "url_env"]:
            return url_env_problem(error.instance) or error.message
        if str(path[-1] if path else "").endswith("month"):
            return f"{error.instance!r} is not a YYYY-MM month of the years 1900-2999"
        if "table" in str(path[-1] if path else ""):
            return f"{error.instance!r} is not a table identifier (catalog.namespace.table or namespace.table)"
        return f"{error.instance!r} is not a valid name (letters, digits and _ only, not starting with a digit)"
    if error.validator == "minimum":
        return f"{error.instance!r} is less than the minimum of {error.validator_value}"
    return error.message


# Spark conf a config may set (spark_config.conf): tuning of resources, partitions, joins and timeouts. Nothing
# the lock, recovery and digests rely on (catalogs, time zone, extensions, jars, JVM options, Hadoop settings):
# a config is data its author can change, and must not be able to take over the job or make re-runs differ.
ALLOWED_CONF_KEYS = frozenset({
    "spark.sql.shuffle.partitions", "spark.default.parallelism", "spark.sql.autoBroadcastJoinThreshold",
    "spark.sql.broadcastTimeout", "spark.sql.join.preferSortMergeJoin", "spark.sql.files.maxPartitionBytes",
    "spark.sql.files.openCostInBytes", "spark.sql.files.maxRecordsPerFile", "spark.sql.ansi.enabled",
    "spark.executor.memory", "spark.executor.memoryOverhead", "spark.executor.cores", "spark.executor.instances",
    "spark.driver.memory", "spark.driver.memoryOverhead", "spark.driver.maxResultSize", "spark.driver.cores",
    "spark.memory.fraction", "spark.memory.storageFraction", "spark.network.timeout", "spark.executor.heartbeatInterval",
    "spark.task.maxFailures", "spark.locality.wait", "spark.speculation", "spark.dynamicAllocation.enabled",
    "spark.dynamicAllocation.minExecutors", "spark.dynamicAllocation.maxExecutors",
    "spark.dynamicAllocation.initialExecutors", "spark.dynamicAllocation.executorIdleTimeout",
    "spark.dynamicAllocation.shuffleTracking.enabled",
})  # fmt: skip
ALLOWED_CONF_PREFIXES = ("spark.sql.adaptive.",)
# Of those, the ones read when the driver JVM starts: under spark-submit (client mode) they take effect only on its
# command line, so the stage operator passes them there and a stage refuses to run without them.
DRIVER_LAUNCH_KEYS = ("spark.driver.memory", "spark.driver.cores", "spark.driver.memoryOverhead")


def driver_launch_conf(cfg: SummaryConfig) -> dict[str, str]:
    """The config's ``spark_config.conf`` settings that must be on spark-submit's command line."""
    return {key: str(value) for key, value in cfg.spark.conf.items() if key in DRIVER_LAUNCH_KEYS}


def conf_key_allowed(key: str) -> bool:
    return key in ALLOWED_CONF_KEYS or key.startswith(ALLOWED_CONF_PREFIXES)


def _airflow_settings(raw: dict[str, Any]) -> AirflowSettings:
    return AirflowSettings(**{**raw, "tags": tuple(raw.get("tags", ())), "alerts": AlertSettings.from_raw(raw.get("alerts", {}))})


def semantic_problems(raw: dict[str, Any]) -> list[str]:
    """Rules a JSON Schema cannot express. ``raw`` has already passed the schema."""
    problems = []
    columns = raw["columns"]
    destinations = list(columns.values())
    rolling = raw.get("rolling_columns", [])
    grids = raw.get("grid_columns", [])

    seen: dict[str, str] = {}
    for source, destination in columns.items():
        if destination in seen:
            problems.append(
                f"columns.{source}: destination {destination!r} is also the destination of columns.{seen[destination]}"
            )
        seen[destination] = source

    known = list(dict.fromkeys(destinations))
    for key in ("column_transformations", "inferred_columns"):
        names_here: dict[str, int] = {}
        for i, derived in enumerate(raw.get(key, [])):
            if derived["name"] in names_here:
                problems.append(
                    f"{key}[{i}].name: {derived['name']!r} is already defined at {key}[{names_here[derived['name']]}]"
                )
            names_here[derived["name"]] = i
            if derived["name"] not in known:
                known.append(derived["name"])

    for column_key in ("partition_column", "primary_column", "max_identifier_column"):
        if raw[column_key] not in destinations:
            problems.append(
                f"{column_key}: {raw[column_key]!r} is not a destination name in `columns`"
                " (the key, month and version must come from the source)"
            )
    key_columns = {raw["partition_column"], raw["primary_column"], raw["max_identifier_column"]}
    if len(key_columns) < 3:
        problems.append("partition_column, primary_column, max_identifier_column: must be three different columns")

    rolling_names: dict[str, int]
    mapper_columns: dict[str, int]
    rolling_names, mapper_columns = {}, {}
    for i, spec in enumerate(rolling):
        where = f"rolling_columns[{i}]"
        if spec["name"] in rolling_names:
            problems.append(f"{where}.name: {spec['name']!r} is already used by rolling_columns[{rolling_names[spec['name']]}]")
        rolling_names[spec["name"]] = i
        if spec["mapper_column"] in mapper_columns:
            problems.append(
                f"{where}.mapper_column: {spec['mapper_column']!r} is already the mapper_column of "
                f"rolling_columns[{mapper_columns[spec['mapper_column']]}]"
            )
        mapper_columns[spec["mapper_column"]] = i
        if spec["mapper_column"] in key_columns:
            problems.append(f"{where}.mapper_column: {spec['mapper_column']!r} is the key, month or version column")
        match = _DECIMAL_RE.match(spec["type"])
        if match and not (1 <= int(match.group(1)) <= 38 and int(match.group(2)) <= int(match.group(1))):
            problems.append(f"{where}.type: {spec['type']!r} needs 1 <= precision <= 38 and scale <= precision")
        if spec["mapper_column"] not in known:
            known.append(spec["mapper_column"])

    generated = {}
    for i, spec in enumerate(rolling):
        generated[f"{spec['name']}_history"] = f"rolling_columns[{i}] (its history array)"
    for i, grid in enumerate(grids):
        where = f"grid_columns[{i}]"
        if grid["name"] in generated:
            problems.append(f"{where}.name: {grid['name']!r} clashes with {generated[grid['name']]}")
        generated[grid["name"]] = f"grid_columns[{i}]"
        target = grid["mapper_rolling_column"]
        if target not in rolling_names:
            hint = ""
            owner = mapper_columns.get(target)
            if owner is not None:
                hint = f" (it is the mapper_column of rolling column {rolling[owner]['name']!r}; use that name)"
            problems.append(f"{where}.mapper_rolling_column: {target!r} is not the name of a rolling column{hint}")
        if "separator" in grid and "seperator" in grid and grid["separator"] != grid["seperator"]:
            problems.append(f"{where}: `separator` and its old spelling `seperator` disagree")

    for name, origin in generated.items():
        if name in known:
            problems.append(f"{origin}: generated column {name!r} clashes with a column of the same name from the source mapping")
    for name in known + list(generated):
        if name in BOOKKEEPING_COLUMNS or name.startswith("__"):
            problems.append(f"column {name!r}: {', '.join(BOOKKEEPING_COLUMNS)} and names starting with '__' are reserved")

    for key in raw.get("spark_config", {}).get("conf", {}):
        if not conf_key_allowed(key):
            problems.append(
                f"spark_config.conf.{key}: not a setting a config may change (tuning only: executor and driver resources, "
                "shuffle partitions, spark.sql.adaptive.*, join thresholds, timeouts; see the README)"
            )

    all_outputs = set(known) | set(generated)
    scalar_outputs = set(known)
    if "primary_date_column" in raw and raw["primary_date_column"] not in scalar_outputs:
        problems.append(f"primary_date_column: {raw['primary_date_column']!r} is not a column of the mapped record")
    for key, allowed, what in (
        ("coalesce_exclusion_cols", scalar_outputs, "a scalar column of the mapped record"),
        ("date_col_list", scalar_outputs, "a scalar column of the mapped record"),
        ("latest_history_addon_cols", all_outputs, "a summary column"),
    ):
        for i, name in enumerate(raw.get(key, [])):
            if name not in allowed:
                problems.append(f"{key}[{i}]: {name!r} is not {what}")

    tables = {k: raw[k] for k in ("source_table", "destination_table", "latest_history_table")}
    default_catalog = raw.get("catalog", {}).get("default", DEFAULT_CATALOG)
    named = {normalized_table(t, default_catalog): k for k, t in tables.items()}
    if len(named) < 3:
        problems.append(
            "source_table, destination_table, latest_history_table: must name three different tables "
            f"(two-part names are in catalog {default_catalog!r}; names are case-insensitive)"
        )
    derived = {normalized_table(t, default_catalog): t for t in derived_tables(raw["destination_table"])}
    for key in ("source_table", "latest_history_table"):
        if normalized_table(raw[key], default_catalog) in derived:
            problems.append(
                f"{key}: {raw[key]!r} is a name the pipeline derives from destination_table for its own bookkeeping "
                f"({', '.join(DERIVED_SUFFIXES)}) and would delete from; choose another name"
            )

    perf = raw.get("performance", {})
    if perf.get("min_partitions", 1) > perf.get("max_partitions", 8192):
        problems.append("performance.min_partitions: greater than performance.max_partitions")
    airflow = raw.get("airflow", {})
    initial = airflow.get("initial_load")
    if initial and initial["end_month"] < initial["start_month"]:
        problems.append("airflow.initial_load.end_month: before airflow.initial_load.start_month")
    if initial and month_number(initial["end_month"]) - month_number(initial["start_month"]) >= MAX_INITIAL_LOAD_MONTHS:
        problems.append(
            f"airflow.initial_load: more than {MAX_INITIAL_LOAD_MONTHS} months (one task each); "
            "load older history with --mode initial from the command line"
        )
    first = airflow.get("start_month") or (initial and add_months(initial["end_month"], 1))
    if airflow.get("end_month") and first and airflow["end_month"] < first:
        problems.append(f"airflow.end_month: before the forward DAG's first month ({first})")
    if airflow.get("backfill_schedule") in ("@once", "@continuous"):
        problems.append(
            f"airflow.backfill_schedule: {airflow['backfill_schedule']!r} is not a repeating schedule the backfill DAG can "
            "combine with its Asset; give a cron expression or preset such as @hourly, or null"
        )
    alerts = airflow.get("alerts", {})
    url_env = alerts.get("webhook", {}).get("url_env")
    if isinstance(url_env, str) and (problem := url_env_problem(url_env)):
        problems.append(f"airflow.alerts.webhook.url_env: {problem}")
    if "forward_deadline_day" in alerts and not ({"webhook", "email"} & set(alerts)):
        problems.append("airflow.alerts.forward_deadline_day: nobody to tell; add airflow.alerts.webhook or airflow.alerts.email")
    catalog = raw.get("catalog", {})
    for name, props in catalog.get("catalogs", {}).items():
        if "type" not in props and "catalog-impl" not in props:
            problems.append(f"catalog.catalogs.{name}: needs `type` (jdbc, hadoop, rest, hive, glue, ...) or `catalog-impl`")
    return problems


def expression_problems(raw: dict[str, Any], checker: Callable[[str], str | None]) -> list[str]:
    problems = []
    for key in ("column_transformations", "inferred_columns", "rolling_columns"):
        for i, spec in enumerate(raw.get(key, [])):
            problem = checker(spec["mapper_expr"])
            if problem:
                problems.append(f"{key}[{i}].mapper_expr: {problem}")
    return problems


def lexical_expression_problem(expr: str) -> str | None:
    """A Spark-free check of one SQL expression: brackets balanced, quotes closed, one statement."""
    if not expr.strip():
        return "empty expression"
    depth = 0
    for i, ch in unquoted(expr):
        if i == len(expr):
            return f"unterminated {ch} quote"
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return f"unbalanced ')' at character {i + 1}"
        elif ch == ";":
            return f"';' at character {i + 1}: one expression expected, not statements"
    if depth:
        return f"{depth} unclosed '('"
    return None


def _build(raw: dict[str, Any], path: Path) -> SummaryConfig:
    grids = tuple(
        GridColumn(
            name=g["name"],
            mapper_rolling_column=g["mapper_rolling_column"],
            placeholder=g.get("placeholder", "?"),
            separator=g.get("separator", g.get("seperator", "")),
        )
        for g in raw.get("grid_columns", [])
    )
    history_length = raw.get("history_length", DEFAULT_HISTORY_LENGTH)
    rolling = tuple(
        RollingColumn(
            name=r["name"],
            mapper_expr=r["mapper_expr"],
            mapper_column=r["mapper_column"],
            num_cols=r.get("num_cols", history_length),
            type_name=r["type"].replace(" ", ""),
        )
        for r in raw.get("rolling_columns", [])
    )
    spark = dict(raw.get("spark_config", {}))
    catalog = dict(raw.get("catalog", {}))
    name = raw.get("name") or re.sub(r"[^A-Za-z0-9_]", "_", path.stem)
    return SummaryConfig(
        path=str(path),
        name=name,
        named=bool(raw.get("name")),
        source_table=raw["source_table"],
        summary_table=raw["destination_table"],
        latest_table=raw["latest_history_table"],
        month_column=raw["partition_column"],
        key_column=raw["primary_column"],
        version_column=raw["max_identifier_column"],
        primary_date_column=raw.get("primary_date_column"),
        history_length=history_length,
        columns=dict(raw["columns"]),
        column_transformations=tuple(DerivedColumn(**d) for d in raw.get("column_transformations", [])),
        inferred_columns=tuple(DerivedColumn(**d) for d in raw.get("inferred_columns", [])),
        coalesce_exclusion_cols=tuple(raw.get("coalesce_exclusion_cols", [])),
        date_col_list=tuple(raw.get("date_col_list", [])),
        latest_history_addon_cols=tuple(raw.get("latest_history_addon_cols", [])),
        rolling_columns=rolling,
        grid_columns=grids,
        performance=Performance(**raw.get("performance", {})),
        spark=SparkSettings(**spark),
        catalog=CatalogSettings(**catalog),
        airflow=_airflow_settings(raw.get("airflow", {})),
    )
