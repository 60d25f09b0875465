"""The code location loads, and shows what the UI and the scheduler rely on."""

import datetime as dt

import dagster as dg
import pytest
from conftest import dbt_data_tests

from relanalytics_pipeline.definitions import defs
from relanalytics_pipeline.defs.automation.housekeeping import in_process_freeing_dead_runs
from relanalytics_pipeline.defs.learn.assets import (
    BASELINES_CHECK,
    NEIGHBOURS_CHECK,
    SimilarDealsConfig,
    similar_deals_assets,
)
from relanalytics_pipeline.defs.learn.resources import MODEL_IO_MANAGER, ModelStore
from relanalytics_pipeline.defs.learn.similar_deals import Params
from relanalytics_pipeline.warehouse import WAREHOUSE_POOL

CRM = {f"crm/{e}" for e in (
    "users", "accounts", "contacts", "leads", "opportunities", "activities", "activity_parties"
)}  # fmt: skip
DBT = {
    "staging/stg_crm__users", "staging/stg_crm__accounts", "staging/stg_crm__contacts",
    "staging/stg_crm__leads", "staging/stg_crm__opportunities", "staging/stg_crm__activities",
    "staging/stg_crm__activity_parties", "intermediate/int_activity_people_classified",
    "intermediate/int_activities_classified", "intermediate/int_record_activities",
    "intermediate/int_records_unioned", "intermediate/int_record_activity_days",
    "intermediate/int_unknown_references",
    "intermediate/int_emails_sided",
    "intermediate/int_email_replies", "intermediate/int_email_responses",
    "marts/relationship_kpis", "marts/relationship_activity_daily", "marts/record_contacts",
    "marts/record_colleagues", "marts/record_summary", "intermediate/int_health_events",
    "intermediate/int_health_figures", "marts/relationship_health_history",
    "marts/relationship_health", "marts/deal_tracking", "intermediate/int_opportunity_features",
    "marts/similar_won_deals", "marts/won_deal_benchmarks",
    "intermediate/int_opportunity_close_date_pushes", "marts/deal_warnings",
    "intermediate/int_closed_deal_warnings",
    "marts/who_knows_whom", "marts/account_connections",
}  # fmt: skip
REPORTS = {
    "reports/deal_tracking_chart", "reports/health_score_diagnostic", "reports/deal_warning_outcomes"
}  # fmt: skip
EXPORTS = {f"dataverse/{t}" for t in (
    "systemuser", "account", "contact", "lead", "opportunity", "email", "appointment", "phonecall",
    "task", "activityparty",
)} | {f"salesforce/{o}" for o in (
    "User", "Account", "Contact", "Lead", "Opportunity", "EmailMessage", "Task", "Event",
    "EventRelation", "EmailMessageRelation",
)}  # fmt: skip
LEARN = {"learn/similar_deals_model", "learn/won_deal_neighbours"}
SERVE = {"serve/published_marts"}
# What the exclusion rules match, which the staging models leave out (docs/privacy.md).
PRIVACY = {"privacy/excluded_activities", "privacy/excluded_people"}
GROUPS = {"ingest", "privacy", "staging", "intermediate", "marts", "learn", "reports", "serve"}


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def test_every_model_reading_the_raw_tables_waits_for_the_exclusion_lists(graph):
    """So that a run's dbt models before the similar-deals model run as one `dbt build`: a model
    that could start before the exclusions would get a `dbt build` (start-up, tests) of its own."""
    exclusions = {dg.AssetKey(["privacy", "excluded_activities"]),
                  dg.AssetKey(["privacy", "excluded_people"])}  # fmt: skip
    readers = [key for key in graph.get_all_asset_keys()
               if key.path[0] in ("staging", "intermediate", "marts")
               and any(parent.path[0] == "crm" for parent in graph.get(key).parent_keys)]  # fmt: skip
    assert len(readers) > 7  # the staging models, and others reading crm directly
    assert [key for key in readers if not exclusions <= graph.get(key).parent_keys] == []


def test_every_asset_is_there_with_description_group_and_kinds(graph):
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == CRM | PRIVACY | DBT | LEARN | REPORTS | EXPORTS | SERVE
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.group_name in GROUPS, key
        assert "duckdb" in node.kinds, key
    assert graph.get(dg.AssetKey(["crm", "users"])).group_name == "ingest"
    assert graph.get(dg.AssetKey(["marts", "relationship_kpis"])).group_name == "marts"


def test_crm_assets_are_the_dbt_sources(graph):
    staging = graph.get(dg.AssetKey(["staging", "stg_crm__activity_parties"]))
    assert staging.parent_keys == {
        dg.AssetKey(["crm", "activity_parties"]),
        dg.AssetKey(["privacy", "excluded_activities"]),
        dg.AssetKey(["privacy", "excluded_people"]),  # with every reader of the raw tables
    }


def test_dbt_tests_are_asset_checks(graph):
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert (
        "marts/relationship_kpis",
        "unique_combination_relationship_kpis_record_type__record_id__period",
    ) in checks
    assert (
        "intermediate/int_activities_classified",
        "unique_int_activities_classified_activity_id",
    ) in checks
    # Besides dbt's tests: the great-expectations suites, the freshness and unknown-columns checks
    # (test_quality.py), and the similar-deals model's two checks.
    assert {name for _, name in checks} == dbt_data_tests() | {
        "great_expectations",
        "activities_fresh",
        "no_unknown_columns",
        NEIGHBOURS_CHECK,
        BASELINES_CHECK,
    }


def test_the_model_sits_between_the_dbt_features_and_the_deal_marts(graph):
    model = graph.get(dg.AssetKey(["learn", "similar_deals_model"]))
    assert model.parent_keys == {dg.AssetKey(["intermediate", "int_opportunity_features"])}
    # The similar-deals marts are views over the neighbours, created by the run's one dbt build:
    # what reads their rows (their checks, the publication) waits for the model instead.
    neighbours = dg.AssetKey(["learn", "won_deal_neighbours"])
    mart = dg.AssetKey(["marts", "similar_won_deals"])
    assert graph.get(mart).parent_keys == {
        dg.AssetKey(["intermediate", "int_opportunity_features"])
    }
    check = dg.AssetCheckKey(mart, "great_expectations")
    (spec,) = [c.get_spec_for_check_key(check) for c in defs.asset_checks if check in c.check_keys]
    assert neighbours in {dep.asset_key for dep in spec.additional_deps}
    assert neighbours in graph.get(dg.AssetKey(["serve", "published_marts"])).parent_keys
    assert similar_deals_assets.get_io_manager_key_for_asset_key(model.key) == MODEL_IO_MANAGER
    assert isinstance(defs.resources[MODEL_IO_MANAGER], ModelStore)
    # Every hyperparameter is described, and the defaults are the library's.
    fields = SimilarDealsConfig.model_fields
    assert all(field.description for field in fields.values())
    assert SimilarDealsConfig().params() == Params()


def test_a_run_builds_with_dbt_once_and_checks_the_marts_once():
    """The step keys of a run of every asset: one `dbt build`, one marts check step, both in
    order with the similar-deals model (before: a second build and check step after it)."""
    graph = defs.resolve_implicit_global_asset_job_def().graph
    steps = [node.name for node in graph.nodes_in_topological_order]
    assert [s for s in steps if "dbt" in s or "great_expectations" in s or "similar" in s] == [
        "relanalytics_dbt", "similar_deals", "marts_great_expectations"
    ]  # fmt: skip
    assert steps.index("marts_great_expectations") < steps.index("serve__published_marts")


def test_publication_follows_every_mart(graph):
    published = graph.get(dg.AssetKey(["serve", "published_marts"]))
    marts = {key for key in graph.get_all_asset_keys() if key.path[0] == "marts"}
    neighbours = dg.AssetKey(["learn", "won_deal_neighbours"])
    assert len(marts) == 13 and published.parent_keys == marts | {neighbours}
    assert published.group_name == "serve"


def test_the_mart_that_records_its_writes_is_named_once_in_its_dbt_models_meta():
    """The publication and the marts' checks both learn from `config: meta: writes:` in
    relationship_health_history.yml where each build records what it wrote; no suite says it."""
    from relanalytics_pipeline.defs.quality.suites import suites
    from relanalytics_pipeline.defs.serve.assets import WRITES

    table = "intermediate.relationship_health_history_writes"
    assert WRITES == {"relationship_health_history": table}
    writes = {suite.table: suite.writes for suite in suites("marts") if suite.writes}
    assert writes == {"relationship_health_history": table}
    assert [s.table for s in suites("marts") if "writes" in s.spec.get("meta", {})] == []


def test_every_warehouse_writer_is_in_the_pool():
    # The mart checks mostly read, but a reader blocks DuckDB's writers all the same.
    for assets_def in [*defs.assets, *defs.asset_checks]:
        assert assets_def.op.pool == WAREHOUSE_POOL, assets_def.op.name


def test_a_run_executes_its_steps_in_its_own_process_after_freeing_dead_runs():
    # One process: no step pays the definitions' start-up again (the crash test in test_nightly.py
    # shows the freeing).
    assert defs.resolve_job_def("everything").executor_def is in_process_freeing_dead_runs


def test_nightly_schedule_runs_the_partition_of_the_day_that_ended():
    schedule = defs.get_schedule_def("nightly")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "everything"
    job = defs.resolve_job_def("everything")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == (
        CRM | PRIVACY | DBT | LEARN | REPORTS | EXPORTS | SERVE
    )

    at = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance, scheduled_execution_time=at, repository_def=defs.get_repository_def()
        ) as context,
    ):
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-02-28"
    assert request.run_key == "2026-02-28"


def test_every_asset_is_daily_or_runs_once_for_a_range_of_days():
    """Ingest (canonical files and exports), the exclusions and dbt are partitioned by day; the
    model, the reports and the publication are not, but like them take a range of days in one run,
    which the CLI's --partition-range requires of every asset."""
    graph = defs.resolve_asset_graph()
    partitioned = {
        k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_partitioned
    }
    assert partitioned == CRM | PRIVACY | EXPORTS | DBT
    for key in graph.get_all_asset_keys():
        assert graph.get(key).backfill_policy == dg.BackfillPolicy.single_run(), key
