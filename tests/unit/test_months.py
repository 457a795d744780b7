import pytest

from spark_jobs.months import add_months, is_valid_month, month_from_number, month_number, month_range


def test_month_number_is_year_times_twelve_plus_month():
    assert month_number("2024-03") == 2024 * 12 + 3 == 24291
    assert month_number("2024-01") - month_number("2023-12") == 1


def test_month_from_number_inverts_month_number_across_year_ends():
    for month in ("2023-12", "2024-01", "0999-07", "2024-11"):
        assert month_from_number(month_number(month)) == month


def test_add_months_crosses_years_both_ways():
    assert add_months("2024-11", 3) == "2025-02"
    assert add_months("2024-02", -14) == "2022-12"


def test_month_range_is_inclusive_and_ordered():
    assert month_range("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert month_range("2024-05", "2024-05") == ["2024-05"]
    with pytest.raises(ValueError, match="before start month"):
        month_range("2024-05", "2024-04")


@pytest.mark.parametrize("bad", ["2024-13", "2024-00", "202403", "2024-3", "24-03", "", None, "2024-03-01"])
def test_malformed_months_are_refused_with_the_value_named(bad):
    assert not is_valid_month(bad)
    with pytest.raises(ValueError, match="not a YYYY-MM month"):
        month_number(bad)
