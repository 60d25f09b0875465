"""A throwaway PostgreSQL server for the tests that publish to one."""

import os
import shutil
import subprocess
import tempfile
from glob import glob
from pathlib import Path

import pytest


def _server_binaries() -> Path | None:
    found = glob("/usr/lib/postgresql/*/bin/initdb")
    return Path(max(found, key=lambda p: int(Path(p).parts[-3]))).parent if found else None


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server of the tests' own, on a unix socket in a temporary folder. initdb
    refuses root: as root the server runs as the `postgres` system user."""

    def unavailable(reason: str):
        if os.environ.get("RELANALYTICS_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here (RELANALYTICS_REQUIRE_POSTGRES): {reason}")
        pytest.skip(f"{reason}; set RELANALYTICS_REQUIRE_POSTGRES=1 to make this a failure")

    binaries = _server_binaries()
    if binaries is None:
        unavailable("no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="relanalytics-postgres-"))
    as_server = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_server = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", 5432
    options = f"-c listen_addresses='' -c unix_socket_directories={folder} -p {port} -c fsync=off"
    commands = [
        [*as_server, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
         "--auth=trust", "-E", "UTF8", "--no-sync"],
        [*as_server, str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w",
         "-l", str(folder / "server.log"), "start"],
    ]  # fmt: skip
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            unavailable(f"{command[len(as_server)]} failed: {result.stderr[-1500:]}")
    try:
        yield f"postgresql://postgres@/postgres?host={folder}&port={port}"
    finally:
        stop = [*as_server, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
