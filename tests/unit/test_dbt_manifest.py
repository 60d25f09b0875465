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
