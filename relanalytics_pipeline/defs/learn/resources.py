"""Where fitted models are kept: pickles under `$RELANALYTICS_HOME/models`, never in the repo."""

import dagster as dg

from relanalytics_pipeline.settings import Settings

MODEL_IO_MANAGER = "model_io_manager"


class ModelStore(dg.ConfigurableIOManagerFactory):
    """Dagster's filesystem IO manager, rooted in the project's data folder when a run starts
    (RELANALYTICS_HOME is read at run time, never at import)."""

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.IOManager:
        base_dir = Settings.from_env().home / "models"
        return dg.FilesystemIOManager(base_dir=str(base_dir)).create_io_manager(context)
