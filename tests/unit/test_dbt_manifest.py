"""The dbt manifest is rebuilt when it is missing or older than a file dbt parses, so that the
asset graph and the models' `meta` (publication reads `writes` there) never come from a stale one."""

import os

from relanalytics_pipeline.defs.transform.resources import manifest_is_stale


def _touch(path, mtime_ns):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_a_manifest_older_than_a_parsed_file_is_stale(tmp_path):
    project, manifest = tmp_path / "dbt", tmp_path / "dbt" / "target" / "manifest.json"
    assert manifest_is_stale(project, manifest)  # missing

    _touch(project / "dbt_project.yml", 1_000)
    _touch(project / "models" / "marts" / "mart.yml", 2_000)
    _touch(manifest, 3_000)
    assert not manifest_is_stale(project, manifest)

    _touch(project / "logs" / "dbt.log", 9_000)  # dbt's own output is no input
    _touch(project / "target" / "run_results.json", 9_000)
    assert not manifest_is_stale(project, manifest)

    _touch(project / "models" / "marts" / "mart.yml", 4_000)  # a model edited since
    assert manifest_is_stale(project, manifest)

    _touch(manifest, 5_000)
    _touch(project / "macros" / "new.sql", 6_000)  # a new macro
    assert manifest_is_stale(project, manifest)
