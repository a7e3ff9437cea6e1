"""The weekly chain's split of a multi-week input by week."""

import pandas as pd
import pytest

from tetra_assets.defs.assets.common import by_week


@pytest.mark.parametrize(
    "weeks",
    [
        ["2018-12-03", "2018-12-03", "2018-12-10", "2018-12-17", "2018-12-17"],  # as read
        ["2018-12-10", "2018-12-03", "2018-12-10", "2018-12-03"],  # interleaved
        [],
    ],
    ids=["blocks", "interleaved", "empty"],
)
def test_by_week_gives_each_weeks_rows_in_order(weeks: list[str]) -> None:
    frame = pd.DataFrame(
        {"week": weeks, "value": range(len(weeks))}, index=range(10, 10 + len(weeks))
    )
    split = by_week(frame)
    assert list(split) == list(dict.fromkeys(weeks))  # first-seen order
    for week, rows in split.items():
        expected = frame[frame["week"] == week]
        pd.testing.assert_frame_equal(rows, expected)  # same rows, order and index
    assert sum(len(rows) for rows in split.values()) == len(frame)
