from spark_jobs.config import Performance
from spark_jobs.stages.partitioning import optimal_partitions


def test_small_batches_get_the_minimum():
    # 100K records: max(0.01, 100K*200 B / 256 MB = 0.07) -> 1 -> clamped up to 16
    assert optimal_partitions(100_000, Performance()) == 16


def test_large_batches_round_to_a_power_of_two():
    # 100M records: by size 100M*200/2^20/256 = 74.5 -> 2^round(6.22) = 64
    assert optimal_partitions(100_000_000, Performance()) == 64
    # 1B records: 745 -> 2^round(9.54) = 1024
    assert optimal_partitions(1_000_000_000, Performance()) == 1024


def test_the_maximum_caps_huge_batches():
    assert optimal_partitions(10**13, Performance(max_partitions=4096)) == 4096


def test_record_count_dominates_when_records_are_small():
    # 800M tiny records: by count 800M/10M = 80; by size 800M*8/2^20/256 = 23.8 -> 2^round(6.32) = 64
    assert optimal_partitions(800_000_000, Performance(avg_record_size_bytes=8)) == 64
