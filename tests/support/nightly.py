"""A generated CRM's history and its next night apart, and warehouses compared row for row: what
the incremental dbt tests (support/two_nights.py) and benchmarks/bench_nightly.py both use."""

import datetime as dt
from pathlib import Path

import duckdb

D = dt.date(2026, 3, 31)
NIGHT = D + dt.timedelta(days=1)
# Parties belong to their activity: they land with the activity's version.
PARTIES = "activity_parties"


def split_off_night(generated: Path, landing: Path, night_files: Path) -> dict[str, int]:
    """Copy the generated CRM into `landing` without what was modified on the night's day; write
    that into `night_files/<entity>.parquet`. Returns the night's rows per entity."""
    night_start = f"TIMESTAMPTZ '{NIGHT.isoformat()} 00:00:00+00'"
    counts = {}
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        activities = f"read_parquet('{generated / 'activities'}/*.parquet')"
        for entity_dir in sorted(p for p in generated.iterdir() if p.is_dir()):
            entity, rows = entity_dir.name, f"read_parquet('{entity_dir}/*.parquet')"
            if entity == PARTIES:
                night = f"activity_id IN (SELECT activity_id FROM {activities} WHERE modified_at >= {night_start})"
            else:
                night = f"modified_at >= {night_start}"
            (landing / entity).mkdir(parents=True)
            connection.execute(
                f"COPY (SELECT * FROM {rows} WHERE NOT ({night})) "
                f"TO '{landing / entity / 'part-0000.parquet'}' (FORMAT parquet)"
            )
            target = night_files / f"{entity}.parquet"
            connection.execute(
                f"COPY (SELECT * FROM {rows} WHERE {night}) TO '{target}' (FORMAT parquet)"
            )
            counts[entity] = connection.execute(f"SELECT count(*) FROM '{target}'").fetchone()[0]
    return counts


def tables_differing(
    warehouse: Path, reference: Path, schema: str = "marts", built_schema: str | None = None
) -> dict[str, int]:
    """Rows of each table of `schema` (the marts) in `reference` found in only one of it and
    `warehouse`, whose tables are in `built_schema` (default: `schema`; `main` in a published
    file), EXCEPT ALL both ways. Doubles are compared as `comparable` rounds them: DuckDB sums
    them in parallel, in no fixed order, so two full builds of the same data differ in the last
    bits of averages and sums."""
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{warehouse}' AS built (READ_ONLY)")
        connection.execute(f"ATTACH '{reference}' AS reference (READ_ONLY)")
        columns = connection.execute(
            "SELECT table_name, list((column_name, data_type) ORDER BY ordinal_position) "
            "FROM information_schema.columns WHERE table_catalog = 'reference' "
            "AND table_schema = ? GROUP BY table_name ORDER BY table_name",
            [schema],
        ).fetchall()
        differing = {}
        schemas = {"built": built_schema or schema, "reference": schema}
        for mart, typed in columns:
            selected = ", ".join(comparable(name, data_type) for name, data_type in typed)
            rows = {name: f"SELECT {selected} FROM {name}.{schemas[name]}.{mart}"
                    for name in schemas}  # fmt: skip
            differing[mart] = sum(
                connection.execute(
                    f"SELECT count(*) FROM ({rows[a]} EXCEPT ALL {rows[b]})"
                ).fetchone()[0]
                for a, b in (("built", "reference"), ("reference", "built"))
            )
        return differing


def comparable(expression: str, data_type: str) -> str:
    """`expression` as two builds of the same data agree on it: a double to 9 significant digits,
    rounded to 12 first. The sums' noise (near 1e-15) would otherwise tip a value whose exact
    decimals end with a 5 in the 10th digit either way: 31.60703125 against 31.607031250000002."""
    if data_type != "DOUBLE":
        return expression
    digits = f"cast(ceil(log10(abs({expression}) + 1e-300)) AS INTEGER)"
    return f"round(round({expression}, 12 - {digits}), 9 - {digits})"
