"""ksqlDB's reading of the partial datetime text compared with ROWTIME and window bounds."""

from __future__ import annotations

import pytest

from ksqlpy.errors import EvaluationError
from ksqlpy.execution.casts import parse_partial_timestamp

DAY_MS = 86_400_000


def test_a_partial_datetime_fills_in_the_start_of_what_it_leaves_out() -> None:
    assert parse_partial_timestamp("1970-01-02") == DAY_MS
    assert parse_partial_timestamp("1970-01-01T01:30") == 90 * 60_000
    assert parse_partial_timestamp("1970-01-01T00:00+0100") == -3_600_000


def test_hour_24_is_the_next_days_midnight() -> None:
    assert parse_partial_timestamp("2020-02-24T24") == parse_partial_timestamp("2020-02-25")


@pytest.mark.parametrize("text", ["2020-13-01", "2020-02-30", "2020-02-24T25", "2020-02-24T10:60", "soon"])
def test_an_impossible_datetime_is_an_evaluation_error(text: str) -> None:
    with pytest.raises(EvaluationError, match="Cannot parse"):
        parse_partial_timestamp(text)
