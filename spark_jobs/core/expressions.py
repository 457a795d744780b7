"""SQL expressions written by people (the backfill filter) and by configs (``mapper_expr``): allowlisted.

Such text is never pasted into SQL and never trusted by name. It must pass,
in this order, before anything reads a row:

1. a length limit, and no comment or second statement outside string literals;
2. Spark's parser: every node of the parsed tree is an allowed operator or a
   call of an allowed function by its plain name, every column a plain name of
   the input (no ``IDENTIFIER(...)``, qualified names, ``*`` or subqueries);
3. Spark's analyzer, when the input's schema is known: every node of the
   resolved tree is an allowed Catalyst class (plus the plumbing the analyzer
   itself adds), every column one of the input's own (no metadata columns),
   the whole deterministic, and LIKE patterns literal with few wildcards.

The allowlists below are SQL names, as people write them; Spark's function
registry turns them into the Catalyst classes the analyzed tree is checked
against, so a name resolved late (``IDENTIFIER('reflect')(...)``) is caught
by what it became, not by what it was called.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spark_jobs.names import EXTRA_CONFIG_FUNCTIONS_ENV
from spark_jobs.sqltext import unquoted

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# An object of the JVM, reached through py4j (a Catalyst tree node, a Scala Seq, an Iceberg table): untyped.
JavaObject = Any

# Operators and functions a backfill filter may use: comparisons and logic, NULL handling, arithmetic,
# and deterministic string and date functions whose cost is linear in their input. No regular expressions
# (backtracking), nothing that builds large values, nothing non-deterministic, nothing that raises.
FILTER_FUNCTIONS = (
    "and", "or", "not", "=", "==", "<=>", ">", ">=", "<", "<=", "in", "between", "isnull", "isnotnull", "like",
    "when", "if", "coalesce", "nvl", "ifnull", "nullif",
    "+", "-", "*", "/", "%", "mod", "negative", "abs",
    "cast", "string", "int", "bigint", "smallint", "tinyint", "double", "float", "decimal", "date", "timestamp", "boolean",
    "upper", "lower", "trim", "ltrim", "rtrim", "length", "char_length", "substr", "substring", "concat", "left", "right",
    "contains", "startswith", "endswith",
    "year", "month", "day", "dayofmonth", "to_date", "date_add", "date_sub", "add_months", "datediff",
)  # fmt: skip

# A config's expressions may also round, pad, replace and format, and use regular expressions: configs are
# reviewed code and v4 configs clean data with these. A deployment that trusts its configs can add more
# (deterministic, scalar) builtin functions by name with $SUMMARY_EXTRA_CONFIG_FUNCTIONS (comma-separated).
CONFIG_FUNCTIONS = FILTER_FUNCTIONS + (
    "round", "bround", "floor", "ceil", "ceiling", "greatest", "least", "nvl2", "isnan", "nanvl", "signum", "pow", "power",
    "concat_ws", "replace", "translate", "lpad", "rpad", "instr", "locate", "substring_index", "initcap", "reverse",
    "format_number", "regexp_replace", "regexp_extract", "rlike", "regexp", "regexp_like",
    "date_format", "months_between", "last_day", "trunc", "date_trunc", "make_date", "quarter", "dayofweek",
    "weekofyear", "to_timestamp",
)  # fmt: skip

# What Spark's analyzer wraps around allowed nodes: the output name, column references, constants,
# implicit casts, and the common-subexpression nodes BETWEEN resolves to.
ANALYZER_PLUMBING = frozenset(
    {"Alias", "AttributeReference", "Literal", "Cast", "With", "CommonExpressionDef", "CommonExpressionRef"}
)
_REFUSED_BY_KIND = {
    "ExpressionWithUnresolvedIdentifier": "IDENTIFIER(...)",
    "UnresolvedStar": "'*'",
    "ScalarSubquery": "subqueries",
    "Exists": "subqueries",
    "ListQuery": "subqueries",
    "InSubquery": "subqueries",
    "LateralSubquery": "subqueries",
    "UnresolvedTableValuedFunction": "table functions",
    "LambdaFunction": "lambda functions",
    "UnresolvedNamedLambdaVariable": "lambda functions",
}


@dataclass(frozen=True)
class Policy:
    """What one kind of expression may contain."""

    what: str  # how messages name the expression
    functions: tuple  # SQL names, see above
    max_length: int
    max_like_wildcards: int | None = None  # None: LIKE patterns are not limited


FILTER = Policy("--backfill-filter", FILTER_FUNCTIONS, max_length=1000, max_like_wildcards=4)
CONFIG = Policy("mapper_expr", CONFIG_FUNCTIONS, max_length=10000)


def config_policy(environ: Mapping[str, str]) -> Policy:
    """CONFIG plus the functions a deployment added by name ($SUMMARY_EXTRA_CONFIG_FUNCTIONS)."""
    extra = tuple(f.strip().lower() for f in environ.get(EXTRA_CONFIG_FUNCTIONS_ENV, "").split(",") if f.strip())
    return CONFIG if not extra else Policy(CONFIG.what, CONFIG.functions + extra, CONFIG.max_length)


# --- step 1: text ---------------------------------------------------------------------------------


def lexical_problem(text: str, max_length: int | None = None) -> str | None:
    """Length, comments and statement separators outside string literals (no Spark needed)."""
    if not text or not text.strip():
        return "it is empty"
    if max_length is not None and len(text) > max_length:
        return f"it is {len(text)} characters long; at most {max_length} are allowed"
    for i, ch in unquoted(text):
        if i == len(text):
            return f"unterminated {ch} quote"
        if ch == ";":
            return "';' (a second statement) is not allowed"
        if ch in "-/" and text[i : i + 2] in ("--", "/*"):
            return "SQL comments are not allowed"
    return None


# --- steps 2 and 3: trees -------------------------------------------------------------------------


def _seq(scala_seq: JavaObject) -> list[JavaObject]:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def _nodes(root: JavaObject) -> Iterator[JavaObject]:
    pending = [root]
    while pending:
        node = pending.pop()
        yield node
        pending.extend(_seq(node.children()))


def _kind(node: JavaObject) -> str:
    return node.getClass().getSimpleName()


_CLASSES_BY_NAME: dict[
    tuple[str, ...], dict[str, str]
] = {}  # functions tuple -> {SQL name: class}; builtins are the same for every session of a process


def _registry_classes(spark: SparkSession, functions: tuple[str, ...]) -> dict[str, str]:
    """{SQL name: Catalyst class} of the builtin functions named in ``functions`` (unknown names are left out)."""
    if functions not in _CLASSES_BY_NAME:
        jvm: JavaObject = spark._jvm  # declared Optional by pyspark; set in every running session
        registry = jvm.org.apache.spark.sql.catalyst.analysis.FunctionRegistry.builtin()
        identifier = jvm.org.apache.spark.sql.catalyst.FunctionIdentifier  # looked up once: py4j asks per dotted name
        classes = {}
        for name in functions:
            info = registry.lookupFunction(identifier(name))
            if info.isDefined():
                classes[name] = info.get().getClassName().rsplit(".", 1)[-1]
        _CLASSES_BY_NAME[functions] = classes
    return _CLASSES_BY_NAME[functions]


def allowed_classes(spark: SparkSession, policy: Policy) -> frozenset[str]:
    """The Catalyst classes ``policy``'s SQL names resolve to (what an analyzed tree may contain)."""
    return frozenset(_registry_classes(spark, policy.functions).values())


def parsed_problems(spark: SparkSession, text: str, policy: Policy, columns: Iterable[str]) -> list[str]:
    """Problems with the parsed tree: anything but allowed operators, allowed function names and input columns."""
    try:
        root = spark._jsparkSession.sessionState().sqlParser().parseExpression(text)
    except Exception as exc:
        message = getattr(exc, "desc", None) or str(exc)
        return [f"it is not one SQL expression: {' '.join(message.strip().splitlines()[:1])[:300]}"]
    classes = allowed_classes(spark, policy)
    by_name = _registry_classes(spark, policy.functions)
    known = {c.lower() for c in columns}
    problems = []
    for node in _nodes(root):
        kind = _kind(node)
        if kind == "UnresolvedAttribute":
            parts = [str(p) for p in _seq(node.nameParts())]
            if len(parts) != 1 or parts[0].lower() not in known:
                problems.append(f"{'.'.join(parts)!r} is not a column of the input")
        elif kind == "UnresolvedFunction":
            parts = [str(p) for p in _seq(node.nameParts())]
            name = ".".join(parts).lower()
            if len(parts) != 1 or name not in by_name:
                problems.append(f"function {name!r} is not allowed")
        elif kind in _REFUSED_BY_KIND:
            problems.append(f"{_REFUSED_BY_KIND[kind]} are not allowed" if kind != "UnresolvedStar" else "'*' is not allowed")
        elif kind != "Literal" and kind not in classes:
            problems.append(f"{_sql_name(node)} is not allowed")
    return sorted(set(problems))


def analyzed_problems(
    spark: SparkSession, frame: DataFrame, column: Column, policy: Policy
) -> tuple[list[str], JavaObject | None]:
    """Problems with ``column`` as Spark's analyzer resolves it over ``frame`` (None: nothing found).

    Returns (problems, analyzed expression); analysis errors (unknown columns, type mismatches) are problems too.
    """
    try:
        plan = frame.select(column.alias("__checked"))._jdf.queryExecution().analyzed()
    except Exception as exc:
        from spark_jobs.errors import first_line

        return [first_line(exc, 300)], None
    expression = _seq(plan.expressions())[0]
    inputs = {attribute.exprId().id() for attribute in _seq(frame._jdf.queryExecution().analyzed().output())}
    classes = allowed_classes(spark, policy) | ANALYZER_PLUMBING
    problems = []
    for node in _nodes(expression):
        kind = _kind(node)
        if kind not in classes:
            problems.append(f"{_sql_name(node)} is not allowed")
        elif kind == "AttributeReference" and node.exprId().id() not in inputs:
            problems.append(f"column {node.name()!r} is not one of the input's own columns")
        elif kind == "Like" and policy.max_like_wildcards is not None:
            pattern = _seq(node.children())[1]
            if _kind(pattern) != "Literal":
                problems.append("a LIKE pattern must be a literal string")
            elif str(pattern.value()).count("%") > policy.max_like_wildcards:
                problems.append(f"a LIKE pattern may hold at most {policy.max_like_wildcards} '%' wildcards")
    if not expression.deterministic():
        problems.append("it is not deterministic (the same records must always select or map the same way)")
    return sorted(set(problems)), expression


def _sql_name(node: JavaObject) -> str:
    """How SQL spells a refused node, for the message: reflect, rand, raise_error, ..."""
    kind = _kind(node)
    if kind in _REFUSED_BY_KIND:
        return _REFUSED_BY_KIND[kind]
    try:
        return f"{node.prettyName()!r} ({kind})"
    except Exception:
        return kind
