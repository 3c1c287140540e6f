"""Reports as people read them: durations in human units, columns with human labels, and charts in
a colour-blind-safe palette on a transparent background (the inbox's light and dark themes)."""

from __future__ import annotations

import pytest

from hub.reports import labels
from hub.reports import queries as reports


@pytest.mark.parametrize(("seconds", "shown"), [
    (None, "–"), (0, "0 s"), (45, "45 s"), (2911.0, "48 min"), (3600, "1 h"), (7500, "2 h 5 min"),
    (97200, "1 d 3 h"), (86400 * 3, "3 d"), (-5, "0 s"),
])
def test_durations_read_in_human_units(seconds, shown):
    assert labels.duration(seconds) == shown


def test_tables_have_labels_and_units():
    report = {"report": "response_times", "columns": ["channel", "first_response_count", "first_response_p50_s", "resolution_p90_s"],
              "rows": [{"channel": "all", "first_response_count": 4, "first_response_p50_s": 2911.0, "resolution_p90_s": None}]}
    table = labels.table(report)
    assert table["headers"] == ["Channel", "Answered", "First response, median", "Resolution, 90th percentile"]
    assert table["rows"] == [["all", "4", "48 min", "–"]]
    assert table["numeric"] == [False, True, True, False]
    assert labels.cell("csat_pct", 87.5) == "87.5 %" and labels.label("some_new_column") == "Some new column"


def test_charts_use_the_distinct_palette_on_a_transparent_background():
    report = {"report": "response_times", "title": "Response times", "from": "2026-11-01", "to": "2026-11-30", "tz": "UTC",
              "columns": [], "rows": [{"channel": "all", "first_response_p50_s": 2911.0, "first_response_p90_s": 7000.0,
                                       "resolution_p50_s": 9000.0, "resolution_p90_s": 20000.0}]}
    svg = reports.to_svg(report)
    assert "First response, median" in svg and "first_response_p50_s" not in svg
    for colour in reports.PALETTE[:4]:
        assert colour.lower() in svg.lower()
    assert "<script" not in svg
    assert len(set(reports.PALETTE)) == len(reports.PALETTE)


def test_channels_in_a_table_are_words_of_the_readers_language():
    from hub.contract import i18n

    report = {"columns": ["day", "channel", "inbound_messages"], "rows": [{"day": "2026-01-05", "channel": "email", "inbound_messages": 3}]}
    assert labels.table(report)["rows"] == [["2026-01-05", "email", "3"]]
    with i18n.use("zh"):
        assert labels.table(report)["rows"] == [["2026-01-05", "邮箱", "3"]]
        assert labels.cell("channel", "carrier_pigeon") == "carrier pigeon", "a channel the catalog does not know stays as it is"
