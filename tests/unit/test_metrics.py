"""The pure parts of the metrics: buckets, rounding, the RFM table and its SQL."""

from datetime import datetime

import duckdb
import pytest

from shopstream.adapters.local.warehouse import duckdb_sql
from shopstream.domain.metrics import (
    EARLIEST,
    LATEST,
    bucket_start,
    is_bucket_start,
    mean_milli,
    sales_per_period,
)
from shopstream.domain.rfm import SEGMENT_TABLE, SEGMENTS, segment, segment_sql

AT = datetime(2011, 3, 6, 17, 42, 31)  # a Sunday


@pytest.mark.parametrize("grain, start", [
    ("hour", datetime(2011, 3, 6, 17)), ("day", datetime(2011, 3, 6)), ("week", datetime(2011, 2, 28)),
    ("month", datetime(2011, 3, 1)), ("year", datetime(2011, 1, 1)),
])
def test_bucket_start_is_date_trunc_with_monday_weeks(grain, start):
    assert bucket_start(grain, AT) == start
    assert is_bucket_start(grain, start) and not is_bucket_start(grain, AT)
    assert duckdb.connect().execute(f"SELECT date_trunc('{grain}', TIMESTAMP '{AT}')").fetchone()[0] == start


def test_unbounded_periods_count_as_whole_buckets():
    assert is_bucket_start("week", EARLIEST) and is_bucket_start("week", LATEST)


def test_unknown_grains_never_reach_sql():
    with pytest.raises(ValueError, match="unknown grain"):
        sales_per_period("minute'); DROP TABLE fact_sales_line; --")


def test_averages_round_half_to_even_in_thousandths():
    assert (mean_milli(2_500, 1_000), mean_milli(3_500, 1_000), mean_milli(286_651, 3)) == (2, 4, 95_550)
    assert mean_milli(-1_000, 3) == -333 and mean_milli(5, 0) == 0


def test_every_score_pair_has_exactly_one_of_the_eleven_segments():
    named = {segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert named == set(SEGMENTS) and len(SEGMENTS) == 11
    rows = duckdb.connect().execute(
        f"SELECT r, f, {segment_sql('r', 'f')} FROM range(1, 6) a(r), range(1, 6) b(f)").fetchall()
    assert len(rows) == 25 and all(name == SEGMENT_TABLE[r][f - 1] for r, f, name in rows)


def test_parameters_are_spelled_for_duckdb_and_casts_and_strings_survive():
    text, names = duckdb_sql("SELECT CAST(:from_date AS TIMESTAMP), 'a:b', x::INT FROM t WHERE y = :limit")
    assert text == "SELECT CAST($from_date AS TIMESTAMP), 'a:b', x::INT FROM t WHERE y = $limit"
    assert names == {"from_date", "limit"}
