"""Incremental dbt models: two nights in a row give the tables of one full run, row for row,
and the same night run twice gives the same tables (the nights: support/two_nights.py)."""

from conftest import query
from support.nightly import tables_differing
from support.two_nights import ACTIVITY_TABLES, intermediate_tables_differing


def test_two_nights_give_the_marts_of_one_full_run(nights):
    differing = tables_differing(nights["night_2"], nights["full_refresh"])
    assert set(differing) >= {
        "relationship_kpis", "relationship_health_history", "deal_warnings", "who_knows_whom",
        "account_connections",
    }  # fmt: skip
    assert differing == dict.fromkeys(differing, 0)


def test_two_nights_give_the_activity_tables_of_one_full_run(nights):
    """The incremental activity tables (and the other intermediate tables) too, row for row."""
    differing = intermediate_tables_differing(nights["night_2"], nights["full_refresh"])
    assert set(differing) >= set(ACTIVITY_TABLES) | {"incremental_builds"}
    assert differing == dict.fromkeys(differing, 0)
    # The email whose file was reloaded without it: there after night 1, gone after night 2.
    rows = "SELECT count(*) FROM intermediate.int_emails_sided WHERE activity_id = ?"
    assert [query(nights[n], rows, [nights["vanished"]]) for n in ("night_1", "night_2")] == [
        [(1,)],
        [(0,)],
    ]


def test_running_the_same_night_twice_gives_the_same_tables(nights):
    for differing in (
        tables_differing(nights["rerun"], nights["night_2"]),
        intermediate_tables_differing(nights["rerun"], nights["night_2"]),
    ):
        assert differing == dict.fromkeys(differing, 0)
