"""Permissions of the files that hold people's names and addresses (published marts, the model).

Set explicitly, whatever the process's umask: RELANALYTICS_PUBLISH_FILE_MODE for files (default
0640: the owner and its group read), the same with the search bit beside each read bit for
folders (0750), so that whoever may read a file may also reach it.
"""

from __future__ import annotations

import os
from pathlib import Path


def folder_mode(file_mode: int) -> int:
    """0640 -> 0750: each class that may read may also enter."""
    return file_mode | (file_mode & 0o444) >> 2


def restrict(path: Path, file_mode: int) -> None:
    """Give `path` and, for a folder, everything under it the mode (symlinks are left alone)."""
    if path.is_symlink():
        return
    if not path.is_dir():
        os.chmod(path, file_mode)
        return
    os.chmod(path, folder_mode(file_mode))
    for folder, folders, files in os.walk(path):
        for name in folders:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), folder_mode(file_mode))
        for name in files:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), file_mode)
