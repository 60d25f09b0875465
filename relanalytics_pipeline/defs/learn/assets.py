"""The similar-won-deals model and its neighbours table; the method is in similar_deals.py."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from relanalytics_pipeline.defs.learn import similar_deals
from relanalytics_pipeline.defs.learn.resources import MODEL_IO_MANAGER
from relanalytics_pipeline.defs.partitions import ONE_RUN_PER_RANGE
from relanalytics_pipeline.defs.transform.assets import relanalytics_dbt
from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.spark import step_session, warehouse_connection
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL

FEATURES_KEY = get_asset_key_for_model([relanalytics_dbt], "int_opportunity_features")
MODEL_KEY = dg.AssetKey(["learn", "similar_deals_model"])
NEIGHBOURS_KEY = dg.AssetKey(["learn", "won_deal_neighbours"])
NEIGHBOURS_CHECK = "neighbours_pair_open_with_won"
BASELINES_CHECK = "model_beats_the_baselines"
DEFAULTS = similar_deals.Params()


class SimilarDealsConfig(dg.Config):
    neighbours: int = Field(
        DEFAULTS.neighbours, ge=1, description="Similar won deals kept per open opportunity (k)."
    )
    min_won_deals: int = Field(
        DEFAULTS.min_won,
        ge=0,
        description="Below this many won deals with an actual value as of D, the plain distance "
        "replaces the model.",
    )
    min_lost_deals: int = Field(
        DEFAULTS.min_lost,
        ge=0,
        description="Below this many lost deals as of D, the plain distance replaces the model.",
    )
    evaluation_share: float = Field(
        DEFAULTS.evaluation_share,
        gt=0,
        lt=1,
        description="Share of the won deals hidden and predicted by the evaluation.",
    )
    min_feature_weight: float = Field(
        DEFAULTS.min_feature_weight,
        ge=0,
        description="Floor added to every feature's learned weight (before the weights are "
        "normalised to sum to 1), so that no feature is ignored entirely.",
    )
    random_seed: int = Field(
        DEFAULTS.seed, description="Seed of the evaluation's split and the weights' model."
    )

    def params(self) -> similar_deals.Params:
        return similar_deals.Params(
            neighbours=self.neighbours,
            min_won=self.min_won_deals,
            min_lost=self.min_lost_deals,
            evaluation_share=self.evaluation_share,
            min_feature_weight=self.min_feature_weight,
            seed=self.random_seed,
        )


@dg.multi_asset(
    name="similar_deals",
    outs={
        "model": dg.AssetOut(
            key=MODEL_KEY,
            io_manager_key=MODEL_IO_MANAGER,
            group_name="learn",
            kinds={"scikit-learn", "duckdb"},
            description="Which won deals an open opportunity resembles: a nearest-neighbour "
            "search over what an open deal already has (estimated value, product, account "
            "industry, size and country, owner's team), each feature weighted by how much it "
            "tells about a won deal's actual value (permutation importance of a ridge regression "
            "of its logarithm). With fewer won deals (with an actual value) or lost deals than "
            "configured, a plain distance with equal weights instead; without any opportunity or "
            "won deal, no neighbours. Its metadata `reason` says which and why. Evaluated on "
            "every run: hidden won deals' values predicted from their neighbours against the "
            "global and same-product medians. "
            "Pickled under $RELANALYTICS_HOME/models.",
        ),
        "neighbours": dg.AssetOut(
            key=NEIGHBOURS_KEY,
            dagster_type=dg.Nothing,
            group_name="learn",
            kinds={"python", "duckdb"},
            description="The top k similar won deals of every open opportunity, from the fitted "
            "model: rank, similarity between 0 and 1, the features that made them similar in "
            "words, and the method (model or plain_distance). Replaced in one transaction; the "
            "source of the marts similar_won_deals and won_deal_benchmarks.",
        ),
    },
    deps=[FEATURES_KEY],
    internal_asset_deps={"model": {FEATURES_KEY}, "neighbours": {FEATURES_KEY, MODEL_KEY}},
    backfill_policy=ONE_RUN_PER_RANGE,
    pool=WAREHOUSE_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            BASELINES_CHECK,
            asset=MODEL_KEY,
            description="On the hidden won deals the neighbours predict actual values with a "
            "smaller mean absolute error than the global median and no larger than the "
            "same-product median. Warns (the neighbours are still written); passes without "
            "figures when there are too few won deals to hide any.",
        ),
        dg.AssetCheckSpec(
            NEIGHBOURS_CHECK,
            asset=NEIGHBOURS_KEY,
            blocking=True,
            description="Every row pairs an open opportunity with a different deal won by the "
            "end of D: no self-neighbours, no open, lost or later deals.",
        ),
    ],
)
def similar_deals_assets(
    context: dg.AssetExecutionContext,
    config: SimilarDealsConfig,
    settings: dg.ResourceParam[Settings],
):
    """Train, evaluate and score in one step: both read the same features, and a step of its own
    would cost every run another process importing the definitions (about 5 s). With the Spark
    engine the step holds one Spark session throughout (relanalytics_pipeline/spark.py)."""
    with step_session(settings):
        yield from _similar_deals(context, config.params(), settings)


def _similar_deals(context, params: similar_deals.Params, settings: Settings):
    with warehouse_connection(settings, read_only=True) as connection:
        opportunities = similar_deals.read_opportunities(connection)
    model = similar_deals.fit(opportunities, params)
    # Why the model has this method (and nothing, or little, to learn from): the run's log says
    # it where a data engineer looks first, the metadata beside the figures.
    reason = f"as of {settings.as_of.isoformat()}: {model.reason}"
    context.log.info(f"similar deals, {model.method}: {reason}")
    evaluation = similar_deals.evaluate(opportunities, params)
    yield dg.Output(
        model,
        output_name="model",
        metadata={
            "model_version": model.version,
            "method": model.method,
            "reason": reason,
            "training_opportunities": model.training["opportunities"],
            "training_won_deals": model.training["won"],
            "training_valued_won_deals": model.training["valued_won"],
            "training_lost_deals": model.training["lost"],
            "features": ", ".join(similar_deals.FEATURES),
            "feature_weights": dg.MetadataValue.json(
                {name: round(weight, 4) for name, weight in model.weights.items()}
            ),
            "params": dg.MetadataValue.json(params.__dict__),
            **{f"evaluation_{name}": value for name, value in evaluation.items()},
        },
    )
    yield dg.AssetCheckResult(
        asset_key=MODEL_KEY,
        check_name=BASELINES_CHECK,
        passed=similar_deals.beats_baselines(evaluation),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"evaluated": bool(evaluation), **evaluation},
    )

    open_deals = opportunities[opportunities[similar_deals.STATE] == "open"]
    rows = model.similar(open_deals)
    with warehouse_connection(settings) as connection:
        similar_deals.write_neighbours(connection, rows)
        misplaced = similar_deals.misplaced_neighbours(connection)
    context.log.info(f"{len(rows)} neighbours of {len(open_deals)} open opportunities")
    yield dg.Output(
        None,
        output_name="neighbours",
        metadata={
            "rows": len(rows),
            "open_opportunities": len(open_deals),
            "method": model.method,
            "preview": dg.MetadataValue.md(rows.head(10).to_markdown(index=False)),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=NEIGHBOURS_KEY,
        check_name=NEIGHBOURS_CHECK,
        passed=misplaced == 0,
        metadata={"misplaced_rows": misplaced},
    )
