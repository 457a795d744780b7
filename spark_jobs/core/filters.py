"""``--backfill-filter``: one boolean condition over the source table's columns, allowlisted (expressions.py).

The filter comes from people (an Airflow trigger form): it is checked before
the run lock is taken, and applied with the DataFrame API to the source table
alone, never pasted into SQL.
"""

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.core.expressions import FILTER, analyzed_problems, lexical_problem, parsed_problems
from spark_jobs.errors import UsageError


def checked_filter(spark: SparkSession, source: DataFrame, text: str) -> Column:
    """The filter as a Column over ``source``; raises UsageError naming every reason it is refused."""
    problems = [p for p in (lexical_problem(text, FILTER.max_length),) if p]
    problems = problems or parsed_problems(spark, text, FILTER, source.columns)
    # parsed only: nothing runs before the analyzed check (None only with problems, which raise below)
    condition: Column = None if problems else F.expr(text)  # type: ignore[assignment]
    if not problems:
        problems, _ = analyzed_problems(spark, source, condition, FILTER)
        if not problems and not isinstance(_data_type(source, condition), T.BooleanType):
            problems = [f"it is {_data_type(source, condition).simpleString()}, not a boolean condition"]
    if problems:
        raise UsageError(f"--backfill-filter {text!r} refused: {'; '.join(problems)}")
    return condition


def _data_type(source: DataFrame, condition: Column) -> T.DataType:
    return source.select(condition.alias("__filter")).schema["__filter"].dataType
