"""The benchmark's measures (benchmarks/bench_pipeline.py): memory of a whole process tree, where
a run's JVMs are descendants, and spill folders of both engines."""

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
    run = bench_pipeline.timed([sys.executable, "-c", TWO_AT_ONCE], {})
    # Both blocks at once, each in a grandchild: 600 MiB and the interpreters (the kernel's
    # counters of resident pages lag by a few MiB).
    assert run.peak * 1024 >= 570
    # os.wait4 gives only the largest single process: one block and one interpreter.
    assert 300 <= run.largest * 1024 < 400


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
