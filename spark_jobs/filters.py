"""``--backfill-filter``: one boolean expression over the source table's columns, nothing else.

The filter comes from people (an Airflow trigger form), so it is never pasted
into SQL. It is parsed by Spark's own expression parser, its tree is checked
(no subqueries, no column of another table, no function that reaches outside
Spark, no comments or second statement), then it is applied with the
DataFrame API to the source table alone.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.errors import UsageError, first_line
from spark_jobs.sqltext import unquoted

# Functions that call arbitrary Java code or read the outside world.
FORBIDDEN_FUNCTIONS = {"reflect", "java_method", "try_reflect", "read_files", "url_decode_java"}
_SUBQUERY_CLASSES = ("ScalarSubquery", "Exists", "ListQuery", "InSubquery", "LateralSubquery", "UnresolvedTableValuedFunction")


def lexical_problem(text):
    """Comments and statement separators outside string literals are refused before parsing."""
    for i, ch in unquoted(text):
        if i == len(text):
            return f"unterminated {ch} quote"
        if ch == ";":
            return "';' (a second statement) is not allowed"
        if ch in "-/" and text[i : i + 2] in ("--", "/*"):
            return "SQL comments are not allowed"
    return None


def _seq(scala_seq):
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def _children(expression):
    return _seq(expression.children())


def tree_problems(spark, text, columns):
    """Problems with the parsed expression tree: subqueries, unknown names, forbidden functions."""
    try:
        root = spark._jsparkSession.sessionState().sqlParser().parseExpression(text)
    except Exception as exc:
        message = getattr(exc, "desc", None) or str(exc)
        return [f"it is not one SQL expression: {' '.join(message.strip().splitlines()[:1])[:300]}"]
    problems, pending, known = [], [root], {c.lower() for c in columns}
    while pending:
        node = pending.pop()
        kind = node.getClass().getSimpleName()
        if kind in _SUBQUERY_CLASSES:
            problems.append("subqueries are not allowed")
        elif kind == "UnresolvedAttribute":
            parts = [str(p) for p in _seq(node.nameParts())]
            if len(parts) != 1 or parts[0].lower() not in known:
                problems.append(f"{'.'.join(parts)!r} is not a column of the source table")
        elif kind == "UnresolvedStar":
            problems.append("'*' is not allowed")
        elif kind == "UnresolvedFunction":
            name = ".".join(str(p) for p in _seq(node.nameParts())).lower()
            if name in FORBIDDEN_FUNCTIONS or "." in name:
                problems.append(f"function {name!r} is not allowed")
        pending.extend(_children(node))
    return sorted(set(problems))


def apply_backfill_filter(spark, source: DataFrame, text) -> DataFrame:
    """``source`` filtered by ``text``; raises UsageError naming why a filter is refused."""
    if not text or not text.strip():
        raise UsageError("--backfill-filter is empty")
    problems = [p for p in (lexical_problem(text),) if p] or tree_problems(spark, text, source.columns)
    if problems:
        raise UsageError(f"--backfill-filter {text!r} refused: {'; '.join(problems)}")
    try:
        condition = F.expr(text)
        data_type = source.select(condition.alias("__filter")).schema["__filter"].dataType
    except Exception as exc:
        raise UsageError(f"--backfill-filter {text!r} refused: {first_line(exc, 300)}") from None
    if not isinstance(data_type, T.BooleanType):
        raise UsageError(f"--backfill-filter {text!r} refused: it is {data_type.simpleString()}, not a boolean condition")
    return source.where(condition)
