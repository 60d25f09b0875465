"""A run for another day reuses dbt's parse of the project: Dagster hands dbt the run's vars in
RELANALYTICS_RUN_VARS, which the macros read only as models run, never while dbt parses them
(dbt_project/macros/run_settings.sql, run_var). Any change to --vars, or to a variable read while
parsing, would make dbt parse the project again."""

import json

from support.warehouses import dbt


def compile_as_of(warehouse, day: str, end: str) -> tuple[str, str]:
    """What dbt compiles `as_of_date()` to for a run of the window [day, end) passed as Dagster
    passes it, and the debug log of that invocation."""
    run_vars = {"as_of_date": day, "window_start": day, "window_end": end,
                "org_domains": "", "privacy_rules": ""}  # fmt: skip
    logs = warehouse.parent / f"logs-{day}"
    result = dbt(
        warehouse, "compile", "--inline", "select {{ as_of_date() }} as d", "--log-path", str(logs),
        environ={"RELANALYTICS_AS_OF": day, "RELANALYTICS_RUN_VARS": json.dumps(run_vars)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout, (logs / "dbt.log").read_text()


def test_the_next_night_reuses_the_parse_and_computes_its_own_day(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    first, first_log = compile_as_of(warehouse, "2026-03-30", "2026-03-31")
    assert "cast('2026-03-30' as date)" in first
    assert "Starting full parse" in first_log

    second, second_log = compile_as_of(warehouse, "2026-03-31", "2026-04-01")
    assert "cast('2026-03-31' as date)" in second
    assert "no changes found, skipping parsing" in second_log
    assert "Starting full parse" not in second_log
