"""The dbt manifest is rebuilt when it is missing or older than a file dbt parses, so that the
asset graph and the models' `meta` (publication reads `writes` there) never come from a stale one."""

import os
import time

from relanalytics_pipeline.defs.transform.resources import manifest_is_stale

PAST = time.time_ns() - 3_600 * 10**9  # an hour ago: what happens now comes after every stamp


def _touch(project, relative, seconds):
    """The file made, its stamp and its folders' (as their last change) `seconds` after PAST."""
    stamp = PAST + seconds * 10**9
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    for changed in [path, *path.relative_to(project).parents]:
        os.utime(project / changed, ns=(stamp, stamp))


def test_a_manifest_older_than_a_parsed_file_is_stale(tmp_path):
    project, manifest = tmp_path / "dbt", "target/manifest.json"
    assert manifest_is_stale(project, project / manifest)  # missing

    _touch(project, "dbt_project.yml", 1)
    _touch(project, "models/marts/mart.yml", 2)
    _touch(project, manifest, 3)
    assert not manifest_is_stale(project, project / manifest)

    _touch(project, "logs/dbt.log", 9)  # dbt's own output is no input
    _touch(project, "target/run_results.json", 9)
    assert not manifest_is_stale(project, project / manifest)
    _touch(project, manifest, 10)

    _touch(project, "models/marts/mart.yml", 11)  # a model edited since
    assert manifest_is_stale(project, project / manifest)

    _touch(project, manifest, 12)
    _touch(project, "macros/new.sql", 13)  # a new macro
    assert manifest_is_stale(project, project / manifest)

    _touch(project, manifest, 14)
    assert not manifest_is_stale(project, project / manifest)
    (project / "macros" / "new.sql").unlink()  # a macro deleted: only its folder says so
    assert manifest_is_stale(project, project / manifest)


def test_a_dbt_invocation_starts_no_process_before_dbt_and_opens_no_adapter(monkeypatch):
    """dagster-dbt ran `dbt --version` (a process importing dbt) and opened a dbt adapter in
    Dagster's process before every invocation: seconds of each run's dbt step, for a version
    this environment pins and an adapter no asset of ours uses."""
    import importlib.metadata

    import dagster_dbt.core.resource

    from relanalytics_pipeline.defs.transform.resources import dbt_project, dbt_resource

    def no_process(*args, **kwargs):
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", no_process)
    dbt = dbt_resource(dbt_project)
    assert str(dbt._cli_version) == importlib.metadata.version("dbt-core")
    assert dbt._initialize_dbt_core_adapter(["build"]) is None
