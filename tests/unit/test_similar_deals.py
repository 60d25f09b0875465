"""The similar-deals model on hand-made opportunities whose nearest neighbours are known, and its
evaluation on the generator's opportunities."""

import datetime as dt
import math
import subprocess
import sys

import duckdb
import numpy as np
import pandas as pd
import pytest
from support.deals import BELOW, deal, frame

from relanalytics_pipeline.cli.generator import generate_dataset
from relanalytics_pipeline.defs.ingest.load import ensure_warehouse
from relanalytics_pipeline.defs.learn import similar_deals
from relanalytics_pipeline.defs.learn.similar_deals import FEATURES, Params, evaluate, fit

SEVEN = len(FEATURES)


def similarity(squared_differences: float) -> float:
    """The plain distance by its definition: equal weights 1/7, d = sqrt(mean of squares)."""
    return 1 / (1 + math.sqrt(squared_differences / SEVEN))


# o1 is BASE. w1 is identical; w2 differs only in country (one mismatch); w3 in product and
# team; w4 is ten times larger. The open o2 and the lost x1 are identical to o1 and must never
# appear as neighbours. Scales come from all seven deals: log1p(50,000) six times and
# log1p(500,000) once for the value.
HAND_MADE = frame(
    deal("o1", "open"),
    deal("o2", "open"),
    deal("x1", "lost"),
    deal("w1", "won", 52_000),
    deal("w2", "won", 48_000, account_country="DE"),
    deal("w3", "won", 45_000, product="Connectors", owner_team="West"),
    deal("w4", "won", 500_000, estimated_value=500_000.0),
)


def value_z_gap() -> float:
    """Standardised distance between log1p(50,000) and log1p(500,000) when the population is six
    of the first and one of the second: gap / std with std = gap * sqrt(6) / 7."""
    return 7 / math.sqrt(6)


def by_pair(rows: pd.DataFrame) -> dict:
    return {(r.opportunity_id, r.similar_opportunity_id): r for r in rows.itertuples()}


def test_known_nearest_neighbours_ranks_similarities_and_reasons():
    model = fit(HAND_MADE, Params(neighbours=3))
    assert model.method == "plain_distance"  # 4 won and 1 lost deals: far below 30 of each
    rows = model.similar(HAND_MADE[HAND_MADE.state_as_of == "open"])
    assert list(rows[rows.opportunity_id == "o1"].similar_opportunity_id) == ["w1", "w2", "w3"]
    pairs = by_pair(rows)
    assert pairs["o1", "w1"].similarity == pytest.approx(1.0)
    assert pairs["o1", "w2"].similarity == pytest.approx(similarity(1))
    assert pairs["o1", "w3"].similarity == pytest.approx(similarity(2))
    assert pairs["o1", "w2"].reasons == (
        "similar estimated value (50,000 vs 50,000); similar company size (100 vs 100 employees); "
        "similar company revenue (1.0M vs 1.0M)"
    )
    assert pairs["o1", "w1"].method == "plain_distance"
    # The fourth nearest, w4, only shows with k = 4: one value gap in standard deviations.
    four = fit(HAND_MADE, Params(neighbours=4)).similar(HAND_MADE[HAND_MADE.opportunity_id == "o1"])
    assert by_pair(four)["o1", "w4"].similarity == pytest.approx(similarity(value_z_gap() ** 2))


def test_reasons_put_the_weightiest_shared_features_first():
    weights = dict.fromkeys(FEATURES, 0.01) | {"product": 0.5, "owner_team": 0.3}
    ours = frame(deal("o1", "open", estimated_value=10_000.0, account_country=None))
    theirs = frame(deal("w1", "won", 1, estimated_value=11_000.0, account_country=None))
    (text,) = similar_deals.reasons(ours, theirs, weights)
    # A missing country is never "the same country"; 11,000 is within 25% of 10,000.
    assert (
        text == "same product (Suite); same team (East); similar estimated value (11,000 vs 10,000)"
    )
    (none,) = similar_deals.reasons(
        ours, frame(deal("w2", "won", 1, estimated_value=1e7, account_employees=1e4,
                         account_annual_revenue=1e9, product="X", account_industry="Y",
                         owner_team="Z")), weights)  # fmt: skip
    assert none == "nearest overall; no feature in common"


def test_never_itself_never_open_lost_or_later_deals():
    rng = np.random.default_rng(3)
    states = rng.choice(["open", "won", "lost", "closed_later"], 400)
    deals = frame(*[
        deal(f"d{i}", s, 1000.0 * (i + 1) if s == "won" else None,
             estimated_value=float(rng.lognormal(10, 1)), product=str(rng.choice(["A", "B"])))
        for i, s in enumerate(states)
    ])  # fmt: skip
    rows = similar_deals.similar_won_deals(deals, Params(min_won=10, min_lost=10))
    state_of = dict(zip(deals.opportunity_id, deals.state_as_of, strict=True))
    assert rows.method.unique().tolist() == ["model"]
    assert {state_of[i] for i in rows.opportunity_id} == {"open"}
    assert {state_of[i] for i in rows.similar_opportunity_id} == {"won"}
    assert not (rows.opportunity_id == rows.similar_opportunity_id).any()
    assert len(rows) == 5 * (states == "open").sum()
    assert rows.similarity.between(0, 1).all()


def test_same_input_same_output_whatever_the_row_order():
    first = similar_deals.similar_won_deals(HAND_MADE, Params(neighbours=4))
    shuffled = HAND_MADE.sample(frac=1, random_state=1).reset_index(drop=True)
    again = similar_deals.similar_won_deals(shuffled, Params(neighbours=4))
    key = ["opportunity_id", "rank"]
    pd.testing.assert_frame_equal(
        first.sort_values(key).reset_index(drop=True), again.sort_values(key).reset_index(drop=True)
    )


def test_fallback_below_the_minimums_and_a_single_won_deal():
    # Eight valued won deals (HAND_MADE's four and four more) and one lost deal.
    eight = pd.concat([HAND_MADE, frame(*[deal(f"v{i}", "won", 40_000 + i) for i in range(4)])])
    assert fit(eight, Params(min_won=8, min_lost=1)).method == "model"
    assert fit(eight, Params(min_won=9, min_lost=1)).method == "plain_distance"
    assert fit(eight, Params(min_won=8, min_lost=2)).method == "plain_distance"
    # One won deal: every open deal gets it, the only neighbour there is.
    single = HAND_MADE[HAND_MADE.opportunity_id.isin(["o1", "o2", "w3"])]
    rows = similar_deals.similar_won_deals(single)
    assert rows[["opportunity_id", "similar_opportunity_id", "rank"]].values.tolist() == [
        ["o1", "w3", 1], ["o2", "w3", 1]
    ]  # fmt: skip
    # Two mismatches out of seven features; the numbers are equal.
    assert rows.similarity.tolist() == pytest.approx([similarity(2)] * 2)
    # No won deal at all: no rows, no error.
    assert similar_deals.similar_won_deals(HAND_MADE[HAND_MADE.state_as_of != "won"]).empty


PLAIN = "plain_distance"


def test_without_opportunities_nothing_to_learn_and_no_rows():
    """A CRM without opportunities (accounts, contacts and activities only)."""
    model = fit(frame())
    assert (model.method, model.reason) == (
        PLAIN, "no opportunities: nothing to learn from; similar_won_deals is empty"
    )  # fmt: skip
    assert model.training == {"opportunities": 0, "won": 0, "valued_won": 0, "lost": 0}
    assert model.similar(frame()).empty
    assert evaluate(frame()) == {}


def test_open_and_lost_deals_without_a_won_one_get_no_neighbours():
    deals = HAND_MADE[HAND_MADE.state_as_of != "won"]  # o1, o2 open; x1 lost
    model = fit(deals)
    assert (model.method, model.reason) == (
        PLAIN, "no won deals among 3 opportunities: no open opportunity has a similar won deal; "
        "similar_won_deals is empty"
    )  # fmt: skip
    assert model.similar(deals[deals.state_as_of == "open"]).empty


def test_only_won_deals_fall_back_to_the_plain_distance():
    won = HAND_MADE[HAND_MADE.state_as_of == "won"]
    model = fit(won)
    assert (model.method, model.reason) == (
        PLAIN,
        f"4 won (4 with an actual value) and 0 lost deals, {BELOW}",
    )
    # With no minimums, four valued won deals are still too few to hold out a quarter (two) of.
    relaxed = fit(won, Params(min_won=0, min_lost=0))
    assert (relaxed.method, relaxed.reason) == (
        PLAIN, "4 won (4 with an actual value) and 0 lost deals: the learned weights need at least "
        "8 won deals with an actual value; plain distance instead"
    )  # fmt: skip
    assert relaxed.weights == pytest.approx(dict.fromkeys(FEATURES, 1 / SEVEN))
    # One won deal alone: nothing open to score, nothing to hide for the evaluation.
    one = fit(won[won.opportunity_id == "w1"], Params(min_won=1, min_lost=0))
    assert one.method == PLAIN and one.reason.startswith(
        "1 won (1 with an actual value) and 0 lost"
    )
    assert evaluate(won[won.opportunity_id == "w1"]) == {}


def test_won_deals_without_values_fall_back_and_are_still_neighbours():
    """Enough won and lost deals by number, but no actual value to learn the weights from."""
    deals = frame(
        deal("o1", "open"),
        *[deal(f"w{i:02}", "won", None, estimated_value=50_000.0 * (i + 1)) for i in range(40)],
        *[deal(f"x{i:02}", "lost") for i in range(40)],
    )
    model = fit(deals)
    assert (model.method, model.reason) == (
        PLAIN,
        f"40 won (0 with an actual value) and 40 lost deals, {BELOW}",
    )
    rows = model.similar(deals[deals.state_as_of == "open"])
    # Everything but the estimated value is BASE: the nearest values first, w00's the same.
    assert rows.similar_opportunity_id.tolist() == ["w00", "w01", "w02", "w03", "w04"]
    assert rows.similarity.iloc[0] == pytest.approx(1.0)
    assert set(rows.method) == {PLAIN}
    assert evaluate(deals) == {}


def test_deals_without_accounts_are_compared_on_the_rest():
    no_accounts = HAND_MADE.assign(account_industry=None, account_employees=np.nan,
                                   account_annual_revenue=np.nan, account_country=None)  # fmt: skip
    model = fit(no_accounts, Params(neighbours=3))
    assert model.reason == (
        f"4 won (4 with an actual value) and 1 lost deals, {BELOW}; no opportunity has a value for "
        "account_employees, account_annual_revenue, account_industry, account_country: they tell "
        "no deal apart"
    )
    rows = model.similar(no_accounts[no_accounts.opportunity_id == "o1"])
    # w2 differed from o1 only in its country, which no deal has now: as alike as w1. w3 differs
    # in product and team.
    assert set(rows.similar_opportunity_id[:2]) == {"w1", "w2"}
    assert rows.similar_opportunity_id.iloc[2] == "w3"
    assert rows.similarity.tolist() == pytest.approx([1.0, 1.0, similarity(2)])


def test_unseen_categories_missing_accounts_zero_and_missing_values():
    model = fit(HAND_MADE, Params(neighbours=4))
    odd = frame(
        # A product and a team no deal had: equally far from every won deal in those features.
        deal("n1", "open", product="Brand new", owner_team="Nowhere"),
        # No account at all: industry, size, revenue and country missing.
        deal("n2", "open", account_industry=None, account_employees=None,
             account_annual_revenue=None, account_country=None),
        # Zero, negative (read as missing) and missing numbers.
        deal("n3", "open", estimated_value=0.0, account_employees=-5.0,
             account_annual_revenue=float("nan")),
    )  # fmt: skip
    rows = model.similar(odd)
    assert rows.groupby("opportunity_id").size().to_dict() == {"n1": 4, "n2": 4, "n3": 4}
    assert np.isfinite(rows.similarity).all() and rows.similarity.between(0, 1).all()
    # n1: an unseen value takes its one-hot columns to zero: half a mismatch against every won
    # deal, w3's own product and team included. w1 and w3 tie at two halves.
    n1 = rows[rows.opportunity_id == "n1"]
    assert set(n1.similar_opportunity_id[:2]) == {"w1", "w3"}
    assert n1.similarity.tolist()[:2] == pytest.approx([similarity(0.5 + 0.5)] * 2)
    # n2: the missing numbers become the population's medians (those of w1), the missing
    # categories a value no deal of the population had: half a mismatch each for industry and
    # country, against w1 and w2 (whose country differs anyway) alike.
    n2 = rows[rows.opportunity_id == "n2"]
    assert set(n2.similar_opportunity_id[:2]) == {"w1", "w2"}
    assert n2.similarity.tolist()[:2] == pytest.approx([similarity(0.5 + 0.5)] * 2)
    assert not n2.reasons.str.contains("industry|country|company").any()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> pd.DataFrame:
    """The generator's opportunities with their accounts' and owners' features, as the features
    model would give them (closed deals as of their close, all before the as-of date)."""
    out = tmp_path_factory.mktemp("deals") / "landing"
    generate_dataset(out, 150_000, seed=11, as_of=dt.date(2026, 3, 31))
    with duckdb.connect() as connection:
        return connection.execute(
            f"""
            SELECT o.opportunity_id, o.status AS state_as_of, o.actual_value,
                   o.estimated_value, a.employees::DOUBLE AS account_employees,
                   a.annual_revenue::DOUBLE AS account_annual_revenue, o.product,
                   a.industry AS account_industry, a.country AS account_country,
                   u.team AS owner_team
            FROM '{out}/opportunities/*.parquet' o
            LEFT JOIN '{out}/accounts/*.parquet' a USING (account_id)
            LEFT JOIN '{out}/users/*.parquet' u ON o.owner_id = u.user_id
            ORDER BY o.opportunity_id
            """
        ).df()


def test_model_beats_the_baselines_on_generated_deals(generated):
    counts = generated.state_as_of.value_counts()
    assert counts["won"] >= 200 and counts["lost"] >= 200
    report = evaluate(generated)
    assert report["hidden_won_deals"] == int(0.2 * counts["won"])
    assert report["mae_model"] < 0.5 * report["mae_global_median"]
    assert report["mae_model"] <= report["mae_same_product_median"]
    assert report["mae_model"] <= report["mae_plain_distance"]
    assert report["neighbours_same_product_share"] > 0.5
    assert similar_deals.beats_baselines(report)
    assert not similar_deals.beats_baselines(
        report | {"mae_model": report["mae_same_product_median"] + 1}
    )
    assert not similar_deals.beats_baselines(report | {"mae_same_product_median": 1e12,
                                                       "mae_model": report["mae_global_median"]})  # fmt: skip
    # The weights learned from the won deals: the estimated value tells most about the outcome.
    weights = fit(generated).weights
    assert max(weights, key=weights.get) == "estimated_value"
    assert sum(weights.values()) == pytest.approx(1.0)
    assert min(weights.values()) >= Params().min_feature_weight / (1 + 7 * 0.05) - 1e-12


def test_evaluation_hides_deals_as_open_and_is_deterministic(generated):
    assert evaluate(generated) == evaluate(generated)
    # Below two valued won deals there is nothing to hide and predict.
    assert evaluate(HAND_MADE[HAND_MADE.opportunity_id.isin(["o1", "w1"])]) == {}


def test_the_neighbours_check_finds_self_open_lost_and_later_neighbours():
    rows = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o1", "o1", "o1", "w1"],
            "similar_opportunity_id": ["w1", "o1", "o2", "x1", "w1"],
            "rank": [1, 2, 3, 4, 1],
            "similarity": [0.9, 1.0, 1.0, 0.5, 1.0],
            "reasons": ["r"] * 5,
            "method": ["plain_distance"] * 5,
        }
    )
    with duckdb.connect() as connection:
        connection.execute("CREATE SCHEMA intermediate")
        connection.execute(
            "CREATE TABLE intermediate.int_opportunity_features AS SELECT * FROM (VALUES "
            "('o1', 'open'), ('o2', 'open'), ('w1', 'won'), ('x1', 'lost')) "
            "AS t(opportunity_id, state_as_of)"
        )
        similar_deals.write_neighbours(connection, rows.iloc[:1])
        assert similar_deals.misplaced_neighbours(connection) == 0
        # o1 as its own neighbour, the open o2, the lost x1, and a won deal scored as if open.
        similar_deals.write_neighbours(connection, rows)
        assert similar_deals.misplaced_neighbours(connection) == 4
        assert connection.execute("SELECT COUNT(*) FROM learn.won_deal_neighbours").fetchone() == (
            5,
        )


def test_the_neighbours_table_refuses_rows_that_break_its_rules():
    """The marts over the neighbours are views, tested nowhere else: the table keeps the rules
    dbt's tests of similar_won_deals kept (one row per pair and per rank, a similarity from 0 to
    1, a known method). A first warehouse gets the table empty, for dbt to create the views."""
    good = {"opportunity_id": "o1", "similar_opportunity_id": "w1", "rank": 1,
            "similarity": 0.5, "reasons": "r", "method": "model"}  # fmt: skip
    broken = {
        "the same rank twice": [good, good | {"similar_opportunity_id": "w2"}],
        "the same pair twice": [good, good | {"rank": 2}],
        "a similarity above 1": [good | {"similarity": 1.5}],
        "a method of its own": [good | {"method": "guess"}],
        "no reasons": [good | {"reasons": None}],
    }
    with duckdb.connect() as connection:
        ensure_warehouse(connection)
        assert connection.execute("SELECT COUNT(*) FROM learn.won_deal_neighbours").fetchone() == (
            0,
        )
        similar_deals.write_neighbours(connection, pd.DataFrame([good]))
        for why, rows in broken.items():
            with pytest.raises(duckdb.ConstraintException):
                similar_deals.write_neighbours(connection, pd.DataFrame(rows))
            # The previous neighbours stay whole.
            assert connection.execute(
                "SELECT opportunity_id, similar_opportunity_id, rank FROM learn.won_deal_neighbours"
            ).fetchall() == [("o1", "w1", 1)], why


def test_the_ingest_creates_the_table_without_the_learn_stage():
    """The warehouse owns the table's shape (warehouse.py): the ingest, which creates it empty,
    does not depend on the stage that fills it after dbt."""
    code = (
        "import sys, relanalytics_pipeline.defs.ingest.load; "
        "print([m for m in sys.modules if m.startswith('relanalytics_pipeline.defs.learn')])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
