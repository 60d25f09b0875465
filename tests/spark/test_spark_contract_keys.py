"""On Spark, a model's primary key is checked once the model is built, as DuckDB's table refuses
a repeated key: Parquet tables enforce no constraint (`spark__persist_constraints` in
macros/portable_sql.sql). A project of three one-line models with the project's macros, since no
input of the real models can repeat a key (staging keeps one version per key)."""

import textwrap

from support.spark_engine import SPARK_TEST, dbt_on_spark

from relanalytics_pipeline.settings import DBT_PROJECT_DIR

pytestmark = SPARK_TEST

MODELS = """
    models:
      - name: pairs_once
        config: {contract: {enforced: true}}
        constraints: [{type: primary_key, columns: [id, kind]}]
        columns:
          - {name: id, data_type: varchar, constraints: [{type: not_null}]}
          - {name: kind, data_type: varchar}
      - name: pairs_twice
        config: {contract: {enforced: true}}
        constraints: [{type: primary_key, columns: [id, kind]}]
        columns:
          - {name: id, data_type: varchar, constraints: [{type: not_null}]}
          - {name: kind, data_type: varchar}
      - name: ids_twice
        config: {contract: {enforced: true}}
        columns:
          - {name: id, data_type: varchar, constraints: [{type: not_null}, {type: primary_key}]}
"""


def test_spark_refuses_a_repeated_key_and_keeps_a_unique_one(tmp_path):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "macros").symlink_to(DBT_PROJECT_DIR / "macros")
    (project / "dbt_project.yml").write_text(
        "name: key_check\nversion: '1.0'\nprofile: relanalytics\n"
        "models: {key_check: {+materialized: table, +file_format: parquet}}\n"
    )
    (project / "models" / "_models.yml").write_text(textwrap.dedent(MODELS))
    sql = {
        # (a, x) and (a, y): the pair is the key, a alone repeats.
        "pairs_once": "select 'a' as id, 'x' as kind union all select 'a', 'y'",
        "pairs_twice": "select 'a' as id, 'x' as kind union all select 'a', 'x'",
        "ids_twice": "select 'a' as id union all select 'a' union all select 'b'",
    }
    for name, select in sql.items():
        (project / "models" / f"{name}.sql").write_text(select + "\n")

    result = dbt_on_spark(
        tmp_path / "home", "run", "--project-dir", str(project),
        "--profiles-dir", str(DBT_PROJECT_DIR),
    )  # fmt: skip

    assert result.returncode == 1, result.stdout
    assert "pairs_twice breaks its contract: (id, kind) a key (1 rows break it)" in result.stdout
    assert "ids_twice breaks its contract: id a key (1 rows break it)" in result.stdout
    assert "PASS=1" in result.stdout and "ERROR=2" in result.stdout
