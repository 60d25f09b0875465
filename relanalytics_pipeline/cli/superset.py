"""Apache Superset on the published marts: its own virtualenv, a local instance, the bundle.

Superset pins libraries the project must not share (pandas 2.1, SQLAlchemy 1.4), so it lives in
`.venv-superset` beside the project's `.venv`, installed with the pins of
`bi/superset/constraints.txt`. Its instance (metadata database, config with a generated secret
key, the admin's generated password) is kept under `$RELANALYTICS_HOME/superset`. The dashboard
bundle `bi/superset/bundle` (Superset's own export format, readable YAML) reads only the
published marts; at set-up its database URI is pointed at the user's published `marts.duckdb`.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from relanalytics_pipeline.settings import PROJECT_ROOT

SUPERSET_DIR = PROJECT_ROOT / "bi" / "superset"
BUNDLE = SUPERSET_DIR / "bundle"
CONSTRAINTS = SUPERSET_DIR / "constraints.txt"
IMPORTER = SUPERSET_DIR / "import_bundle.py"
VENV = PROJECT_ROOT / ".venv-superset"
# What Superset's environment installs; their versions, and why each is pinned, are in CONSTRAINTS.
PACKAGES = ["apache-superset", "duckdb-engine", "rich", "cachetools", "flask-caching"]
ADMIN = "admin"
HOST = "127.0.0.1"


class SupersetSetupError(RuntimeError):
    """A set-up step that failed; its message says which and shows the step's output."""


@dataclass(frozen=True)
class Instance:
    """A local Superset: where it keeps its state, and how to log in."""

    home: Path
    password: str

    @property
    def config(self) -> Path:
        return self.home / "superset_config.py"

    def environ(self) -> dict[str, str]:
        return {
            **os.environ,
            "SUPERSET_HOME": str(self.home),
            "SUPERSET_CONFIG_PATH": str(self.config),
            "FLASK_APP": "superset",
        }


def superset_executable() -> Path:
    return VENV / "bin" / "superset"


def ensure_venv(log=print) -> None:
    """Install Superset into its own virtualenv, unless the same pins are already installed."""
    stamp = VENV / "relanalytics-constraints.txt"
    wanted = CONSTRAINTS.read_text()
    if stamp.exists() and stamp.read_text() == wanted and superset_executable().exists():
        return
    if not (VENV / "bin" / "python").exists():
        log(f"Creating Superset's virtualenv {VENV}")
        _run([sys.executable, "-m", "venv", str(VENV)], "creating the virtualenv")
    log("Installing Apache Superset into it (about 870 MB; a few minutes the first time)")
    _run(
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "-c", str(CONSTRAINTS), *PACKAGES],
        "installing Superset",
    )  # fmt: skip
    stamp.write_text(wanted)


def ensure_instance(home: Path) -> Instance:
    """The instance's folder with its config: a secret key and an admin password generated once.

    Both files are readable by their owner only; the secret key is never printed.
    """
    home.mkdir(parents=True, exist_ok=True)
    password_file = home / "admin-password"
    if not password_file.exists():
        _write_private(password_file, secrets.token_urlsafe(12))
    instance = Instance(home=home, password=password_file.read_text().strip())
    if not instance.config.exists():
        _write_private(
            instance.config,
            "# Written by `relanalytics bi superset`. The secret key signs sessions: keep it.\n"
            f"SECRET_KEY = {secrets.token_urlsafe(42)!r}\n"
            f"SQLALCHEMY_DATABASE_URI = {'sqlite:///' + str(home / 'superset.db')!r}\n",
        )
    return instance


def bundle_zip(uri: str) -> bytes:
    """The bundle as a ZIP Superset imports, its database's SQLAlchemy URI replaced by `uri`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(BUNDLE.rglob("*.yaml")):
            text = path.read_text()
            if path.parent.name == "databases":
                config = yaml.safe_load(text)
                config["sqlalchemy_uri"] = uri
                text = yaml.safe_dump(config, sort_keys=False)
            archive.writestr(f"relanalytics/{path.relative_to(BUNDLE)}", text)
    return buffer.getvalue()


def duckdb_uri(published: Path) -> str:
    """The published file, opened read-only: the publication replaces it atomically meanwhile."""
    if not published.exists():
        raise SupersetSetupError(
            f"No published marts at {published}: run `relanalytics demo` or the pipeline first"
        )
    return f"duckdb:///{published.resolve()}?access_mode=read_only"


def set_up(home: Path, uri: str, log=print) -> Instance:
    """Install Superset if needed, prepare its instance and import the bundle reading `uri`
    (overwriting the bundle's own database, datasets, charts and dashboards; nothing else)."""
    ensure_venv(log)
    instance = ensure_instance(home)
    superset = str(superset_executable())
    log(f"Preparing Superset's metadata database in {home}")
    _run([superset, "db", "upgrade"], "superset db upgrade", instance)
    _run(
        [superset, "fab", "create-admin", "--username", ADMIN, "--firstname", "Relanalytics",
         "--lastname", "Admin", "--email", "admin@localhost", "--password", instance.password],
        "creating the admin user", instance,
    )  # fmt: skip
    _run([superset, "init"], "superset init", instance)
    bundle = home / "relanalytics-bundle.zip"
    bundle.write_bytes(bundle_zip(uri))
    log("Importing the dashboards")
    _run([str(VENV / "bin" / "python"), str(IMPORTER), str(bundle), ADMIN], "importing", instance)
    return instance


def run_command(port: int) -> list[str]:
    return [str(superset_executable()), "run", "-h", HOST, "-p", str(port), "--with-threads"]


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _run(command: list[str], step: str, instance: Instance | None = None) -> None:
    result = subprocess.run(
        command,
        env=instance.environ() if instance else None,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise SupersetSetupError(f"{step} failed (exit {result.returncode}):\n{output}")
