"""The similar-deals multi-asset in a Dagster run, on a warehouse holding only its features
table: it says why it fell back, in its log and its metadata (the model itself:
tests/unit/test_similar_deals.py)."""

import duckdb
import pytest
from support.deals import BELOW, deal, frame

from relanalytics_pipeline.defs.learn import similar_deals


@pytest.mark.parametrize(
    ("deals", "reason", "neighbours"),
    [
        (frame(), "no opportunities: nothing to learn from; similar_won_deals is empty", 0),
        # The open o1 still gets its three similar won deals, by the plain distance.
        (
            frame(deal("o1", "open"), *[deal(f"w{i}", "won") for i in range(3)]),
            f"3 won (0 with an actual value) and 0 lost deals, {BELOW}",
            3,
        ),
    ],
    ids=["no opportunities", "won deals without values"],
)
def test_the_asset_says_why_in_its_log_and_metadata(
    deals, reason, neighbours, tmp_path, monkeypatch
):
    """The Dagster multi-asset in process, on a warehouse holding only the features table."""
    import dagster as dg

    from relanalytics_pipeline.definitions import defs
    from relanalytics_pipeline.defs.learn.assets import (
        BASELINES_CHECK,
        MODEL_KEY,
        NEIGHBOURS_CHECK,
        NEIGHBOURS_KEY,
        similar_deals_assets,
    )

    monkeypatch.setenv("RELANALYTICS_HOME", str(tmp_path))
    monkeypatch.setenv("RELANALYTICS_AS_OF", "2026-03-31")
    monkeypatch.delenv("RELANALYTICS_WAREHOUSE", raising=False)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        connection.execute("CREATE SCHEMA intermediate")
        connection.register("deals", deals.astype({"actual_value": float}))
        connection.execute(f"CREATE TABLE {similar_deals.FEATURES_TABLE} AS SELECT * FROM deals")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [similar_deals_assets],
            resources=defs.resources,
            instance=instance,
        )
        assert result.success
        logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    expected = f"as of 2026-03-31: {reason}"
    assert f"similar deals, plain_distance: {expected}" in logged
    model = result.asset_materializations_for_node("similar_deals")[0]
    metadata = {name: value.value for name, value in model.metadata.items()}
    assert (metadata["method"], metadata["reason"]) == ("plain_distance", expected)
    written = result.asset_materializations_for_node("similar_deals")[1]
    assert written.asset_key == NEIGHBOURS_KEY and written.metadata["rows"].value == neighbours
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {BASELINES_CHECK: True, NEIGHBOURS_CHECK: True}
    assert model.asset_key == MODEL_KEY
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as connection:
        rows = connection.execute("SELECT method FROM learn.won_deal_neighbours").fetchall()
    assert rows == [("plain_distance",)] * neighbours
