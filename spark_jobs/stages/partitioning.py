"""Shuffle partition sizing from the ``performance`` config (v4's rule, kept so tuned configs still fit)."""

import math

from pyspark.sql import SparkSession

from spark_jobs.config import Performance


def optimal_partitions(record_count: int, performance: Performance) -> int:
    """max(records / target, bytes / max file size), rounded to a power of two, clamped to [min, max]."""
    by_count = record_count / performance.target_records_per_partition
    size_mb = record_count * performance.avg_record_size_bytes / (1024 * 1024)
    by_size = size_mb / performance.max_file_size_mb
    power_of_two = 2 ** round(math.log2(max(by_count, by_size, 1)))
    return int(max(performance.min_partitions, min(performance.max_partitions, power_of_two)))


def configure_shuffle_partitions(spark: SparkSession, record_count: int, performance: Performance) -> int:
    partitions = optimal_partitions(record_count, performance)
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    return partitions
