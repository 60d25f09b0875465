"""The yardstick: the marts of a full refresh computed a second way, by hand, in one DuckDB
connection straight from the landed Parquet files (yardstick.sql).

Written from the rules (docs/metrics.md, docs/insights.md), apart from the dbt models: where both
agree on every row of every mart, a mistake would have had to be made twice, the same way. The
pipeline tests compare their marts with it (tests/pipeline/test_marts_second_method.py), and
benchmarks/bench_pipeline.py runs it beside the pipeline as what the computation costs at the
least (no dbt, no intermediate tables, no tests, no publication).

Every mart but the similar-deals model's (similar_won_deals, won_deal_benchmarks). The defaults of
docs/metrics.md are the settings. Written for canonical Parquet landing files (any folder depth):
the newest version of each record wins and deleted ones are left out; an activity's parties are
those landed with it (the generator writes one party set per activity).
"""

import datetime as dt
from pathlib import Path

import duckdb

from relanalytics_pipeline.warehouse import q
from support.nightly import comparable

MARTS = (
    "relationship_kpis", "record_summary", "relationship_activity_daily", "record_contacts",
    "record_colleagues", "who_knows_whom", "account_connections", "relationship_health_history",
    "relationship_health", "deal_warnings", "deal_tracking",
)  # fmt: skip

SQL = (Path(__file__).with_name("yardstick.sql")).read_text()

KEYS = {
    "users": "user_id", "accounts": "account_id", "contacts": "contact_id",
    "opportunities": "opportunity_id", "leads": "lead_id", "activities": "activity_id",
}  # fmt: skip
# Temporary tables of the current records, as the SQL names them.
TABLES = {"users": "users", "accounts": "accounts", "contacts": "contacts",
          "opportunities": "opps", "leads": "leads", "activities": "acts"}  # fmt: skip

SEVERITIES = (
    ("going_dark", "high"), ("past_close_date", "high"), ("unanswered", "medium"),
    ("close_date_pushed", "medium"), ("health_declining", "medium"), ("single_threaded", "medium"),
    ("slow_team_replies", "low"), ("no_recent_meeting", "low"),
)  # fmt: skip
STAGE_COLORS = (
    ("qualify", "dark blue", "#1F3A93"), ("develop", "light blue", "#6CB4EE"),
    ("propose", "red", "#D62828"), ("close", "purple", "#7B2CBF"),
)  # fmt: skip
SETTINGS = {
    "period": 90, "window": 7, "write": 5, "read": 2.5, "daily_days": 60,
    "default_minutes": "CASE activity_type WHEN 'appointment' THEN 30 WHEN 'phone_call' THEN 10 "
                       "ELSE 15 END",
    "prefixes": "re|fw|fwd|aw|wg|sv|vs|tr|rv|回复|答复|转发",
    "touch_email": 1, "touch_call": 2, "touch_meeting": 3, "touch_task": 1,
    "frequency_days": 30, "signal_days": 90, "expected_touches": 4, "cadence": "weekly",
    "half_life_recency": 14, "team_target": 24, "customer_target": 48, "breadth_target": 3,
    "weight_recency": 0.25, "weight_frequency": 0.25, "weight_reciprocity": 0.25,
    "weight_responsiveness": 0.15, "weight_breadth": 0.1, "good": 60, "fair": 40,
    "min_two_way": 3, "trend_days": 14, "trend_step": 5, "history_days": 180,
    "half_life": 90, "dark_days": 14, "unanswered_emails": 2, "unanswered_days": 3,
    "single_people": 1, "meeting_days": 30, "pushes": 2, "slow_days": 30, "slow_hours": 48,
}  # fmt: skip
RUNNING_SUMS = (
    "two_way", "touches", "cust_init", "team_init", "closed", "answered", "cust_responses",
    "cust_seconds", "team_responses", "team_seconds", "people",
)  # fmt: skip
MACROS = """
CREATE TEMP MACRO plural(n, noun) AS n || ' ' || noun || CASE WHEN n = 1 THEN '' ELSE 's' END;
-- Half away from zero as a decimal, once floating-point noise below 1e-9 is dropped.
CREATE TEMP MACRO tenths(x) AS round(round(x::DOUBLE, 9)::DECIMAL(38, 9), 1);
CREATE TEMP MACRO number_text(x) AS
    CASE WHEN x = floor(x) THEN x::BIGINT::VARCHAR ELSE tenths(x)::VARCHAR END;
CREATE TEMP MACRO percent_text(x) AS floor(100 * x + 0.5)::BIGINT || '%';
-- The mean of the parts that are known; empty when neither is.
CREATE TEMP MACRO mean_of_known(a, b) AS
    (coalesce(a, 0) + coalesce(b, 0)) / nullif((a IS NOT NULL)::INTEGER + (b IS NOT NULL)::INTEGER, 0);
"""


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _load(connection: duckdb.DuckDBPyConnection, landing: Path, org_domains: list[str]) -> None:
    """The current versions of the records, as temporary tables."""
    for entity, key in KEYS.items():
        connection.execute(
            f"CREATE TEMP TABLE {TABLES[entity]} AS SELECT * FROM ("
            f"SELECT * FROM read_parquet(?, union_by_name = true) "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY modified_at DESC) = 1) "
            "WHERE NOT coalesce(is_deleted, false)",
            [str(landing / entity / "**" / "*.parquet")],
        )
    connection.execute(
        "CREATE TEMP TABLE parties AS SELECT * FROM read_parquet(?, union_by_name = true)",
        [str(landing / "activity_parties" / "**" / "*.parquet")],
    )
    # Every version of every opportunity, in the order they landed: the close date's pushes.
    connection.execute(
        "CREATE TEMP TABLE opp_versions AS SELECT opportunity_id, modified_at, "
        "estimated_close_date, filename AS source_file, file_row_number AS source_row "
        "FROM read_parquet(?, union_by_name = true, filename = true, file_row_number = true)",
        [str(landing / "opportunities" / "**" / "*.parquet")],
    )
    connection.execute(
        "CREATE TEMP TABLE org_domains AS SELECT unnest(?::VARCHAR[]) AS domain", [org_domains]
    )


def compute(
    connection: duckdb.DuckDBPyConnection,
    landing: Path,
    as_of: dt.date,
    org_domains: list[str] = (),
) -> None:
    """Compute every mart of MARTS as of `as_of` into the schema `yardstick` of `connection`."""
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(MACROS)
    _load(connection, Path(landing), list(org_domains))
    days = SETTINGS["history_days"] + SETTINGS["trend_days"]
    priorities = {"high": 0, "medium": 100, "low": 200}
    script = SQL.replace("{}", "{{}}").format(
        d=as_of.isoformat(),
        end=(as_of + dt.timedelta(days=1)).isoformat(),
        daily_start=(as_of - dt.timedelta(days=SETTINGS["daily_days"] - 1)).isoformat(),
        first_day=(as_of - dt.timedelta(days=days - 1)).isoformat(),
        history_start=(as_of - dt.timedelta(days=SETTINGS["history_days"] - 1)).isoformat(),
        computed_days=days,
        running_sums=", ".join(
            f"sum(coalesce({name}, 0)) OVER w AS {name}" for name in RUNNING_SUMS
        ),
        latest_sums=", ".join(f"coalesce(e.{name}, 0) AS {name}" for name in RUNNING_SUMS),
        severities=", ".join(
            f"({_quoted(warning)}, {_quoted(severity)}, {priorities[severity] + index})"
            for index, (warning, severity) in enumerate(SEVERITIES, 1)
        ),
        stage_colors=", ".join(
            f"({_quoted(stage)}, {_quoted(name)}, {_quoted(code)})"
            for stage, name, code in STAGE_COLORS
        ),
        **SETTINGS,
    )
    connection.execute(script)


def rows_differing(
    connection: duckdb.DuckDBPyConnection, warehouse: Path, schema: str = "marts"
) -> dict[str, int]:
    """Per mart, the rows found in only one of `warehouse`'s marts (in `schema`: the warehouse's
    `marts`, or `main` in the published DuckDB file) and the yardstick's (EXCEPT ALL both ways):
    the yardstick's columns cast to the pipeline's types, doubles to 9 significant digits (DuckDB
    sums them in parallel, in no fixed order)."""
    connection.execute("ATTACH ? AS pipeline (READ_ONLY)", [str(warehouse)])
    try:
        differing = {}
        for mart in MARTS:
            columns = connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = 'pipeline' AND table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position",
                [schema, mart],
            ).fetchall()
            selects = {
                source: "SELECT "
                + ", ".join(comparable(f"CAST({name} AS {data_type})", data_type)
                            for name, data_type in columns)  # fmt: skip
                + f" FROM {table}"
                for source, table in (("ours", f"yardstick.{mart}"), ("theirs", f"pipeline.{q(schema)}.{mart}"))
            }  # fmt: skip
            differing[mart] = sum(
                connection.execute(f"SELECT count(*) FROM ({selects[a]} EXCEPT ALL {selects[b]})")
                .fetchone()[0]
                for a, b in (("ours", "theirs"), ("theirs", "ours"))
            )  # fmt: skip
        return differing
    finally:
        connection.execute("DETACH pipeline")
