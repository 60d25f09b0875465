"""The benchmark's measures (benchmarks/bench_pipeline.py): memory of a whole process tree, where
a run's JVMs are descendants, and spill folders of both engines."""

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_pipeline  # noqa: E402

MIB = 2**20

# Two grandchildren of the measured process (as a step's JVM and dbt's are), each holding 300 MiB
# for three seconds once both hold theirs; their parents wait for them.
TWO_AT_ONCE = textwrap.dedent(
    """
    import subprocess, sys, tempfile
    hold = (
        "import os, sys, time; block = b'x' * (300 * 2**20); folder = sys.argv[1]; "
        "open(os.path.join(folder, str(os.getpid())), 'w').close(); "
        "[time.sleep(0.1) for _ in iter(lambda: len(os.listdir(folder)) < 2, False)]; "
        "time.sleep(3)"
    )
    child = "import subprocess, sys; subprocess.run([sys.executable, '-c', *sys.argv[1:]])"
    with tempfile.TemporaryDirectory() as folder:
        both = [subprocess.Popen([sys.executable, "-c", child, hold, folder]) for _ in range(2)]
        for process in both:
            process.wait()
    """
)


def test_peak_memory_is_the_whole_tree_at_once():
    # Measured from a fresh interpreter: a forked child starts with its parent's peak, and this
    # test's process (an xdist worker late in a run) may hold more than the blocks.
    measure = (
        "import json, sys; import bench_pipeline; "
        "run = bench_pipeline.timed([sys.executable, '-c', sys.argv[1]], {}); "
        "print(json.dumps([run.peak, run.largest, run.output, run.at_peak]))"
    )
    measured = subprocess.run(
        [sys.executable, "-c", measure, TWO_AT_ONCE], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT / "benchmarks")},
    )  # fmt: skip
    run = bench_pipeline.Run(0, *json.loads(measured.stdout.splitlines()[-1]))
    # Both blocks at once, each in a grandchild: 600 MiB and the interpreters (the kernel's
    # counters of resident pages lag by a few MiB).
    assert run.peak * 1024 >= 570
    # os.wait4 gives only the largest single process: one block and one interpreter.
    assert 300 <= run.largest * 1024 < 400
    # At the peak, by command name: five interpreters (the measured one, two children, the two
    # grandchildren with their blocks), all named alike.
    (name,) = run.at_peak
    assert name.startswith("python") and run.at_peak[name] == run.peak


def test_spill_is_duckdb_temporary_directories_and_spark_block_managers(tmp_path):
    files = {
        "warehouse.duckdb": 1 * MIB,
        "warehouse.duckdb.tmp/duckdb_temp_storage-0.tmp": 2 * MIB,
        "spark-tmp/blockmgr-1f/0c/shuffle_0_1_0.data": 4 * MIB,
        "spark-tmp/spark-7a/userFiles/x": 8 * MIB,
        "spark-warehouse/marts.db/deal_tracking/part-0.parquet": 16 * MIB,
    }
    for name, size in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * size)
    with bench_pipeline.SpillSampler(tmp_path) as sampler:
        pass
    assert (sampler.peak, sampler.disk) == (2 * MIB + 4 * MIB, 31 * MIB)


def test_seconds_of_steps_and_dbt_nodes_from_the_run_output():
    # Lines as a Spark run prints them: a step over a minute; a dbt line dagster-dbt re-logged;
    # one it printed as dbt's JSON because Spark's progress bar came first on the line.
    output = bench_pipeline.ANSI.sub(
        "",
        'Finished execution of step "crm_landing" in 4m42s.\n'
        'Finished execution of step "dataverse_export" in 450ms.\n'
        "67 of 95 OK created sql table model marts.relationship_kpis ...... [\x1b[32mOK\x1b[0m in 37.03s]\n"
        '[Stage 3:>   (0 + 1) / 1]   {"info": {"msg": "66 of 95 OK created sql scoped_incremental model '
        'intermediate.int_health_events ..... [\\u001b[32mOK\\u001b[0m in 36.86s]", "level": "info"}}\n'
        "65 of 95 PASS unique_x .... [\x1b[32mPASS\x1b[0m in 5.44s]\n"
        "70 of 95 WARN 12 slow_team_replies .... [\x1b[33mWARN 12\x1b[0m in 1.5s]\n",
    )
    assert bench_pipeline.step_seconds(output) == {"crm_landing": 282.0, "dataverse_export": 0.45}
    assert bench_pipeline.model_seconds(output) == {
        "marts.relationship_kpis": 37.03,
        "intermediate.int_health_events": 36.86,
    }
    assert bench_pipeline.model_seconds(output, bench_pipeline.TEST) == {
        "unique_x": 5.44,
        "slow_team_replies": 1.5,
    }


def test_the_step_at_the_peak_is_the_last_started_by_then():
    line = (
        "{} +0000 - dagster - DEBUG - __ASSET_JOB - 3f0a - 24937 - {} - STEP_START - "
        'Started execution of step "{}".'
    )
    output = "\n".join(
        [
            "2026-12-05 20:43:31 +0000 - dagster - DEBUG - __ASSET_JOB - 3f0a - 24937 - RUN_START",
            line.format("2026-12-05 20:43:33", "crm_landing", "crm_landing"),
            "2026-12-05 20:44:48 +0000 - dagster - DEBUG - ... - STEP_OUTPUT - Yielded output",
            line.format("2026-12-05 20:47:08", "privacy_exclusions", "privacy_exclusions"),
            line.format("2026-12-05 20:47:08", "relanalytics_dbt", "relanalytics_dbt"),
        ]
    )
    at = dt.datetime(2026, 12, 5, 20, 0, tzinfo=dt.UTC).timestamp()
    # 20:43:32.5: before the first step; 20:46:32: the ingest; 20:47:08.4: the second of two
    # steps logged in the same second (one ran 0.2 s); 20:55: still dbt.
    assert [bench_pipeline.step_at(output, at + s) for s in (2612.5, 2792, 2828.4, 3300)] == [
        "start-up",
        "crm_landing",
        "relanalytics_dbt",
        "relanalytics_dbt",
    ]
    run = bench_pipeline.Run(
        1.0, 12.95, 12.45, output, {"dagster": 0.48, "dbt": 12.45}, "relanalytics_dbt"
    )
    assert bench_pipeline.memory_at_peak(run) == "dagster 0.48, dbt 12.45 in step relanalytics_dbt"
