"""Where fitted models are kept: pickles under `$RELANALYTICS_HOME/models`, never in the repo."""

import pickle
from pathlib import Path

import dagster as dg
from upath import UPath

from relanalytics_pipeline.permissions import folder_mode, restrict
from relanalytics_pipeline.settings import Settings

MODEL_IO_MANAGER = "model_io_manager"


class _PrivatePickles(dg.UPathIOManager):
    """Pickles under a folder, as Dagster's filesystem IO manager keeps them (one file per asset
    and partition, no extension), whose files get RELANALYTICS_PUBLISH_FILE_MODE: the model holds
    the training deals' features, names included."""

    extension = ""

    def __init__(self, base_dir: Path, file_mode: int):
        super().__init__(base_path=UPath(base_dir))
        self._root = base_dir
        self._file_mode = file_mode

    def dump_to_path(self, context: dg.OutputContext, obj, path) -> None:
        # The folders first, so that the pickle is never readable by others while it is written.
        folder = Path(path).parent
        below_root = len(folder.relative_to(self._root).parts)
        for private in [folder, *folder.parents][: below_root + 1]:
            private.chmod(folder_mode(self._file_mode))
        with path.open("wb") as file:
            pickle.dump(obj, file)
        restrict(Path(path), self._file_mode)

    def load_from_path(self, context: dg.InputContext, path):
        with path.open("rb") as file:
            return pickle.load(file)


class ModelStore(dg.ConfigurableIOManagerFactory):
    """Dagster's filesystem IO manager under `$RELANALYTICS_HOME/models`, from the run's
    settings (defs/run_settings.py): RELANALYTICS_HOME is read when a run starts, never at
    import."""

    settings: dg.ResourceDependency[Settings]

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.IOManager:
        return _PrivatePickles(self.settings.home / "models", self.settings.publish_file_mode)
