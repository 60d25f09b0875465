"""Similar won deals: which won opportunities an open one resembles, and how well that predicts.

The similarity is a weighted nearest-neighbour search over what an open deal already has: its
estimated value, product, the account's industry, size and country, and the owner's team (never
its actual value, close date or engagement, which the benchmarks compare against; nor its stage
or age, which for a won deal are its last stage and its whole sales cycle). Each feature
goes through a scikit-learn Pipeline: numbers are log-scaled (deal values and company sizes span
orders of magnitude), missing ones set to the population's median, then standardised; categories
are one-hot encoded, a missing one being a value of its own. A category mismatch weighs as much
as one standard deviation of a number; a value the fitted model never saw (a deal scored later)
counts half a mismatch against every won deal alike, so it does not change their order.

Two weightings, both searched the same way:
- `model` (enough closed deals): each feature weighs by how much it tells about a won deal's
  actual value: the permutation importance of a ridge regression of log(actual value) over the
  won deals, plus a floor so that every feature still breaks ties. On the generator's data
  (benchmarks/bench_similar_deals.py) the neighbours predict hidden won deals' values with about
  half the error of the plain distance below (which lets country or team count as much as a
  tenfold difference in value), a quarter of the same-product median's and a sixth of the
  global median's.
- `plain_distance` (too few closed deals to learn from): every feature weighs the same.
`fit` says in words why it chose its method (`reason`): no opportunities or no won deals (then
nothing to search, and no neighbours), fewer won deals with an actual value or lost deals than
the minimums, or too few valued won deals to hold out a quarter of them (MIN_LEARNING_WON).
The distance d is the square root of the weighted mean of squared differences; the similarity is
1 / (1 + d): 1 for identical features, 0.5 at one standard deviation on every feature.

`evaluate` hides a share of the won deals, treats them as open and predicts each one's actual
value as the median of its neighbours' actual values, against the global median and the median
of won deals of the same product.

Nothing here knows Dagster; scikit-learn is imported inside the functions that use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from relanalytics_pipeline.warehouse import (
    METHOD_MODEL,
    METHOD_PLAIN,
    NEIGHBOURS_COLUMNS,
    NEIGHBOURS_SPARK_SCHEMA,
    NEIGHBOURS_TABLE,
)

NUMERIC_FEATURES = ("estimated_value", "account_employees", "account_annual_revenue")
CATEGORICAL_FEATURES = ("product", "account_industry", "account_country", "owner_team")
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
KEY, STATE, TARGET = "opportunity_id", "state_as_of", "actual_value"

MODEL_VERSION = "1"

# In words, for the `reasons` column: a feature that made two deals similar.
PHRASES = {
    "estimated_value": "similar estimated value ({theirs} vs {ours})",
    "account_employees": "similar company size ({theirs} vs {ours} employees)",
    "account_annual_revenue": "similar company revenue ({theirs} vs {ours})",
    "product": "same product ({theirs})",
    "account_industry": "same industry ({theirs})",
    "account_country": "same country ({theirs})",
    "owner_team": "same team ({theirs})",
}
# Two numbers count as similar in the reasons when the larger is at most this much the smaller.
SIMILAR_RATIO = 1.25
MAX_REASONS = 3
# A missing category is a value of its own (two deals without an industry are alike in that).
MISSING = "(missing)"
# The learned weights hold out a quarter of the valued won deals and need two of them to measure
# anything: below this many, whatever the minimums, the plain distance.
MIN_LEARNING_WON = 8


@dataclass(frozen=True)
class Params:
    """Hyperparameters; the Dagster asset's Config describes each one."""

    neighbours: int = 5
    min_won: int = 30
    min_lost: int = 30
    evaluation_share: float = 0.2
    min_feature_weight: float = 0.05
    seed: int = 0


@dataclass
class SimilarDeals:
    """A fitted similarity: the feature Pipeline, the won deals it searches, the weights used."""

    method: str
    weights: dict[str, float]
    features: object | None  # the fitted sklearn ColumnTransformer; None without opportunities
    index: object | None  # sklearn NearestNeighbors over the won deals; None without any
    won: pd.DataFrame  # the won deals' ids, features and actual values, in index order
    neighbours: int
    version: str = MODEL_VERSION
    training: dict[str, int] = field(default_factory=dict)
    reason: str = ""  # why this method, in words (see choose_method)

    def search(self, deals: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Positions in `won` of each deal's nearest won deals, nearest first, and the distances."""
        k = min(self.neighbours, len(self.won))
        if k == 0 or deals.empty:
            return np.empty((len(deals), 0), int), np.empty((len(deals), 0))
        distances, positions = self.index.kneighbors(
            self.features.transform(_clean(deals)), n_neighbors=k
        )
        return positions, distances

    def similar(self, deals: pd.DataFrame) -> pd.DataFrame:
        """One row per deal and similar won deal: rank, similarity, reasons in words, method."""
        positions, distances = self.search(deals)
        k = positions.shape[1]
        ours = deals.iloc[np.repeat(np.arange(len(deals)), k)].reset_index(drop=True)
        theirs = self.won.iloc[positions.ravel()].reset_index(drop=True)
        return pd.DataFrame(
            {
                "opportunity_id": ours[KEY].to_numpy(),
                "similar_opportunity_id": theirs[KEY].to_numpy(),
                "rank": np.tile(np.arange(1, k + 1), len(deals)),
                "similarity": 1.0 / (1.0 + distances.ravel()),
                "reasons": reasons(ours, theirs, self.weights),
                "method": self.method,
            }
        )


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """The features only, as the Pipeline expects them: floats (negatives as missing) and text."""
    numbers = frame[list(NUMERIC_FEATURES)].astype(float)
    # A negative value or size is a data-entry error: scored as unknown rather than as tiny.
    numbers = numbers.where(numbers >= 0)
    categories = frame[list(CATEGORICAL_FEATURES)].astype(object)
    categories = categories.where(categories.notna(), MISSING).astype(str)
    return pd.concat([numbers, categories], axis=1)


def feature_pipeline(weights: dict[str, float]):
    """One Pipeline per feature inside a ColumnTransformer whose transformer weights are the
    square roots of the feature weights (one-hot ones halved: a mismatch differs in two columns)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    def numeric():
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
            StandardScaler(),
        )

    def categorical():
        return OneHotEncoder(handle_unknown="ignore")

    transformers = [(name, numeric(), [name]) for name in NUMERIC_FEATURES]
    transformers += [(name, categorical(), [name]) for name in CATEGORICAL_FEATURES]
    halved = {name: 1.0 if name in NUMERIC_FEATURES else 0.5 for name in FEATURES}
    scales = {name: float(np.sqrt(weights[name] * halved[name])) for name in FEATURES}
    return ColumnTransformer(
        transformers,
        transformer_weights=scales,
        sparse_threshold=0.0,
    )


def equal_weights() -> dict[str, float]:
    return {name: 1.0 / len(FEATURES) for name in FEATURES}


def learned_weights(won: pd.DataFrame, params: Params) -> dict[str, float]:
    """Each feature's share of the permutation importance of a ridge regression of log(actual
    value) on the same encoded features, measured on a quarter of the won deals it was not fitted
    on, plus a floor. Linear in logs fits how deal values compose (a product's price times a size
    and an industry factor); gradient boosting gave the same evaluation figures (within 1%) at
    three times the cost."""
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    known = won[won[TARGET].notna()]
    X = _clean(known)
    y = np.log1p(known[TARGET].to_numpy(dtype=float).clip(0))
    order = np.random.default_rng(params.seed).permutation(len(X))
    held_out, fitted = order[: len(X) // 4], order[len(X) // 4 :]
    importance = np.zeros(len(FEATURES))
    if len(held_out) >= 2:
        regression = make_pipeline(
            feature_pipeline(equal_weights()), RidgeCV(alphas=np.logspace(-3, 3, 7))
        ).fit(X.iloc[fitted], y[fitted])
        importance = permutation_importance(
            regression,
            X.iloc[held_out],
            y[held_out],
            n_repeats=5,
            random_state=params.seed,
            max_samples=min(len(held_out), 20_000),
        ).importances_mean.clip(0)
    share = importance / importance.sum() if importance.sum() > 0 else np.zeros(len(FEATURES))
    weights = params.min_feature_weight + share
    return dict(zip(FEATURES, (weights / weights.sum()).tolist(), strict=True))


def choose_method(counts: dict[str, int], params: Params) -> tuple[str, str]:
    """The method the numbers of deals allow, and why in words. `counts` are the training
    figures: opportunities, won (valued: with an actual value) and lost deals."""
    opportunities, won, valued, lost = (
        counts[name] for name in ("opportunities", "won", "valued_won", "lost")
    )
    if opportunities == 0:
        return METHOD_PLAIN, "no opportunities: nothing to learn from; similar_won_deals is empty"
    if won == 0:
        return METHOD_PLAIN, (
            f"no won deals among {opportunities} "
            f"{'opportunity' if opportunities == 1 else 'opportunities'}: no open opportunity has "
            "a similar won deal; similar_won_deals is empty"
        )
    closed = f"{won} won ({valued} with an actual value) and {lost} lost deals"
    if valued < params.min_won or lost < params.min_lost:
        return METHOD_PLAIN, (
            f"{closed}, below min_won_deals={params.min_won} / min_lost_deals={params.min_lost}: "
            "plain distance instead of the learned weights"
        )
    if valued < MIN_LEARNING_WON:
        return METHOD_PLAIN, (
            f"{closed}: the learned weights need at least {MIN_LEARNING_WON} won deals with an "
            "actual value; plain distance instead"
        )
    return METHOD_MODEL, f"{closed}: weights learned from the {valued} valued won deals"


def fit(
    opportunities: pd.DataFrame, params: Params = Params(), method: str | None = None
) -> SimilarDeals:
    """Fit on every opportunity known as of D: the scales on all of them (no outcome involved),
    the weights and the index on the won deals. The method, unless given, follows the numbers of
    closed deals (choose_method)."""
    from sklearn.neighbors import NearestNeighbors

    states = opportunities[STATE]
    won = opportunities[states == "won"].sort_values(KEY, kind="stable").reset_index(drop=True)
    training = {
        "opportunities": len(opportunities),
        "won": len(won),
        "valued_won": int(won[TARGET].notna().sum()),
        "lost": int((states == "lost").sum()),
    }
    chosen, reason = choose_method(training, params)
    if method is None:
        method = chosen
    elif method != chosen:
        reason = f"{method} as asked"
    empty = [name for name in FEATURES if len(opportunities) and opportunities[name].isna().all()]
    if empty:
        reason += f"; no opportunity has a value for {', '.join(empty)}: they tell no deal apart"
    weights = learned_weights(won, params) if method == METHOD_MODEL else equal_weights()
    # Without any opportunity there are no scales to fit, and nothing to search or score.
    features = feature_pipeline(weights).fit(_clean(opportunities)) if len(opportunities) else None
    index = None
    if len(won):
        # Brute force: exact, and with 33 one-hot and scaled columns faster than a tree here.
        index = NearestNeighbors(algorithm="brute").fit(features.transform(_clean(won)))
    return SimilarDeals(
        method=method,
        weights=weights,
        features=features,
        index=index,
        won=won[[KEY, *FEATURES, TARGET]],
        neighbours=params.neighbours,
        training=training,
        reason=reason,
    )


def similar_won_deals(opportunities: pd.DataFrame, params: Params = Params()) -> pd.DataFrame:
    """Fit, then the similar won deals of every open opportunity."""
    model = fit(opportunities, params)
    return model.similar(opportunities[opportunities[STATE] == "open"])


def _number(values: np.ndarray) -> np.ndarray:
    """Numbers as a seller reads them: 52,000 / 1.3M."""
    return np.array(
        [f"{v / 1e6:.1f}M" if v >= 1e6 else f"{v:,.0f}" for v in values.tolist()], dtype=object
    )


def reasons(ours: pd.DataFrame, theirs: pd.DataFrame, weights: dict[str, float]) -> np.ndarray:
    """For each pair, the features the two deals share (categories) or nearly share (numbers
    within SIMILAR_RATIO), most weighty first, at most MAX_REASONS, joined by "; "."""
    ours, theirs = _clean(ours), _clean(theirs)
    phrases = []
    for name in sorted(FEATURES, key=lambda n: (-weights[n], FEATURES.index(n))):
        a, b = ours[name].to_numpy(), theirs[name].to_numpy()
        if name in NUMERIC_FEATURES:
            low, high = np.fmin(a, b), np.fmax(a, b)
            alike = (high <= low * SIMILAR_RATIO) & ~np.isnan(a) & ~np.isnan(b)
            theirs_text, ours_text = _number(np.nan_to_num(b)), _number(np.nan_to_num(a))
        else:
            alike = (a == b) & (a != MISSING)
            theirs_text = ours_text = b
        template = PHRASES[name]
        phrases.append(
            np.where(
                alike,
                [
                    template.format(theirs=t, ours=o)
                    for t, o in zip(theirs_text.tolist(), ours_text.tolist(), strict=True)
                ],
                None,
            )
        )
    columns = zip(*phrases, strict=True) if phrases else iter(())
    joined = ["; ".join([p for p in row if p][:MAX_REASONS]) for row in columns]
    return np.array([text or "nearest overall; no feature in common" for text in joined], object)


def evaluate(opportunities: pd.DataFrame, params: Params = Params()) -> dict[str, float | int]:
    """Hide `evaluation_share` of the won deals with an actual value, treat them as open (no
    actual value, no close date: the features never include either) and predict each one's
    actual value as the median of its neighbours' actual values; the same for the plain distance,
    the global median and the same-product median of the remaining won deals. Reports the mean
    absolute error of each, the median absolute percentage error, and how often the model's
    neighbours share the hidden deal's product and industry. Empty below two valued won deals."""
    states = opportunities[STATE]
    valued = np.flatnonzero((states == "won").to_numpy() & opportunities[TARGET].notna().to_numpy())
    hidden_count = int(len(valued) * params.evaluation_share)
    if hidden_count < 1 or hidden_count == len(valued):
        return {}
    rng = np.random.default_rng(params.seed)
    hidden_positions = np.sort(rng.choice(valued, hidden_count, replace=False))
    frame = opportunities.copy()
    frame[STATE] = frame[STATE].astype(object)
    frame.iloc[hidden_positions, frame.columns.get_loc(STATE)] = "open"
    hidden = opportunities.iloc[hidden_positions]
    truth = hidden[TARGET].to_numpy(dtype=float)
    known = frame[frame[STATE] == "won"]
    known_values = known[TARGET].dropna()

    predictions = {}
    for method in (METHOD_MODEL, METHOD_PLAIN):
        model = fit(frame, params, method)
        positions, _ = model.search(hidden)
        values = model.won[TARGET].to_numpy(dtype=float)[positions]
        predictions[method] = np.nanmedian(values, axis=1)
        if method == METHOD_MODEL:
            matched = model.won.iloc[positions.ravel()]
            same_product = _same(hidden["product"], matched["product"], positions.shape[1])
            same_industry = _same(
                hidden["account_industry"], matched["account_industry"], positions.shape[1]
            )
    global_median = float(known_values.median())
    predictions["global_median"] = np.full(hidden_count, global_median)
    by_product = known.dropna(subset=[TARGET]).groupby("product")[TARGET].median()
    predictions["same_product_median"] = (
        hidden["product"].map(by_product).fillna(global_median).to_numpy(dtype=float)
    )

    report: dict[str, float | int] = {"hidden_won_deals": hidden_count}
    for name, predicted in predictions.items():
        error = np.abs(predicted - truth)
        report[f"mae_{name}"] = float(np.mean(error))
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(truth > 0, error / truth, np.nan)
        report[f"mdape_{name}"] = float(np.nanmedian(relative))
    report["neighbours_same_product_share"] = same_product
    report["neighbours_same_industry_share"] = same_industry
    return report


def beats_baselines(evaluation: dict[str, float | int]) -> bool:
    """The issue's bar: a smaller error than the global median, none larger than the same-product
    median's. True without an evaluation (too few won deals to hide any)."""
    return not evaluation or (
        evaluation["mae_model"] < evaluation["mae_global_median"]
        and evaluation["mae_model"] <= evaluation["mae_same_product_median"]
    )


def _same(hidden: pd.Series, matched: pd.Series, k: int) -> float:
    """Share of (hidden deal, neighbour) pairs with the same known value."""
    mine = np.repeat(hidden.to_numpy(dtype=object), k)
    theirs = matched.to_numpy(dtype=object)
    return float(np.mean((mine == theirs) & pd.notna(mine))) if len(mine) else 0.0


FEATURES_TABLE = "intermediate.int_opportunity_features"


def read_opportunities(connection) -> pd.DataFrame:
    """What the model may read of every opportunity: its key, state as of D, features and (for
    won deals only, as the evaluation's truth) its actual value."""
    columns = ", ".join([KEY, STATE, TARGET, *FEATURES])
    return connection.execute(f"SELECT {columns} FROM {FEATURES_TABLE} ORDER BY {KEY}").df()


def write_neighbours(connection, rows: pd.DataFrame) -> None:
    """Replace the neighbours table in one transaction (on Spark: as a new version of its
    files); the marts similar_won_deals and won_deal_benchmarks (dbt views, contracts enforced)
    read it."""
    if hasattr(connection, "replace_table"):  # a SparkConnection (relanalytics_pipeline/spark.py)
        columns = [c.split()[0] for c in NEIGHBOURS_SPARK_SCHEMA.split(", ")]
        connection.replace_table(NEIGHBOURS_TABLE, rows[columns], NEIGHBOURS_SPARK_SCHEMA)
        return
    connection.execute("CREATE SCHEMA IF NOT EXISTS learn")
    connection.register("neighbours", rows)
    try:
        connection.execute("BEGIN TRANSACTION")
        connection.execute(f"CREATE OR REPLACE TABLE {NEIGHBOURS_TABLE} ({NEIGHBOURS_COLUMNS})")
        connection.execute(
            f"INSERT INTO {NEIGHBOURS_TABLE} SELECT CAST(opportunity_id AS VARCHAR), "
            "CAST(similar_opportunity_id AS VARCHAR), CAST(rank AS INTEGER), "
            "CAST(similarity AS DOUBLE), CAST(reasons AS VARCHAR), CAST(method AS VARCHAR) "
            "FROM neighbours"
        )
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.unregister("neighbours")


def misplaced_neighbours(connection) -> int:
    """Rows of the neighbours table that pair anything but an open opportunity with a different
    deal won by the end of D (a self-neighbour, an open, lost or later deal), by the features
    table: a check written apart from the search that should make it impossible."""
    (count,) = connection.execute(
        f"""
        SELECT COUNT(*)
        FROM {NEIGHBOURS_TABLE} AS neighbours
        LEFT JOIN {FEATURES_TABLE} AS opportunity
            ON neighbours.opportunity_id = opportunity.opportunity_id
        LEFT JOIN {FEATURES_TABLE} AS similar_deal
            ON neighbours.similar_opportunity_id = similar_deal.opportunity_id
        WHERE neighbours.opportunity_id = neighbours.similar_opportunity_id
            OR opportunity.state_as_of IS DISTINCT FROM 'open'
            OR similar_deal.state_as_of IS DISTINCT FROM 'won'
        """
    ).fetchone()
    return count
