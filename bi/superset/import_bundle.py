"""Import a relanalytics bundle ZIP into the Superset of SUPERSET_CONFIG_PATH, overwriting the
bundle's own objects (run with Superset's Python: `python import_bundle.py BUNDLE.zip USER`).

`superset import-dashboards` keeps an existing database and existing charts as they are, so a
second set-up would keep a stale database URI and the previous charts; Superset's assets import,
the one behind its API's /api/v1/assets/import/, replaces the bundle's objects, and nothing else.
"""

import sys
from zipfile import ZipFile

from flask import g
from superset.app import create_app

app = create_app()
with app.app_context():
    from superset import security_manager
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.commands.importers.v1.utils import get_contents_from_bundle

    path, username = sys.argv[1:3]
    g.user = security_manager.find_user(username=username)
    with ZipFile(path) as bundle:
        contents = get_contents_from_bundle(bundle)
    # The bundle is a dashboard export (importable as such from the UI); the assets import checks
    # the type its metadata declares.
    contents["metadata.yaml"] = contents["metadata.yaml"].replace("type: Dashboard", "type: assets")
    ImportAssetsCommand(contents).run()
