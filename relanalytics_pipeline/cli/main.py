"""`relanalytics`: the project's commands.

relanalytics generate --activities N --out DIR --seed S   a synthetic CRM landing folder
relanalytics demo                                         everything, end to end, locally
relanalytics dev                                          the Dagster UI on a kept instance
relanalytics data-docs [--out DIR]                        great-expectations' HTML data docs
relanalytics bi superset [--port N]                       Apache Superset's dashboards on the marts
relanalytics erase --email A | --contact-id C | --user-id U   a person, from every copy
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from relanalytics_pipeline.cli.sample import SAMPLE_ACTIVITIES, ensure_sample
from relanalytics_pipeline.settings import PROJECT_ROOT, SettingError, Settings, parse_day

MARTS_QUERY = (
    "SELECT k.record_type, k.record_name, k.emails_sent, k.emails_received, k.meetings, "
    "k.last_contacted_at, k.next_contact_at, h.health_score, h.health_status "
    "FROM marts.relationship_kpis AS k JOIN marts.relationship_health AS h "
    "USING (record_type, record_id) WHERE k.period = 'trailing' "
    "ORDER BY k.past_activities DESC LIMIT 10"
)


def _dagster_environ(settings: Settings) -> dict[str, str]:
    """The environment for Dagster commands: absolute settings, and a kept instance.

    Without DAGSTER_HOME, Dagster would use a temporary instance: no run history, no schedule
    state, and no pool limit keeping the warehouse to one writer across runs.
    """
    from relanalytics_pipeline.cli.instance import ensure_dagster_home

    environ = {**os.environ, **settings.as_environ()}
    if not environ.get("DAGSTER_HOME"):
        environ["DAGSTER_HOME"] = str(ensure_dagster_home(settings.dagster_home))
    return environ


def _dagster_executable() -> str:
    return str(Path(sys.executable).with_name("dagster"))


def generate(args: argparse.Namespace) -> int:
    from relanalytics_pipeline.cli.generator import generate_dataset

    as_of = parse_day(args.as_of, "--as-of") if args.as_of else Settings.from_env().as_of
    started = time.perf_counter()
    counts = generate_dataset(
        Path(args.out), args.activities, seed=args.seed, as_of=as_of, fmt=args.format,
        progress=args.activities >= 100_000,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    print(f"Wrote a synthetic CRM ending {as_of} to {args.out} in {elapsed:.1f} s:")
    for entity, rows in counts.items():
        print(f"  {entity:<17} {rows:>12,}")
    return 0


def demo(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    settings.check_as_of()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Made here rather than in the ingest step, so that the whole run reads the same folder.
    log = logging.getLogger("relanalytics")
    landing = ensure_sample(settings, settings.as_of, log, args.activities)
    settings = dataclasses.replace(settings, landing_dir=landing)
    environ = _dagster_environ(settings)
    print(
        f"Materializing every asset as of {settings.as_of} (Dagster home {environ['DAGSTER_HOME']})"
    )
    command = [
        _dagster_executable(), "asset", "materialize",
        "-m", "relanalytics_pipeline.definitions", "--select", "*",
        "--partition", settings.as_of.isoformat(),
    ]  # fmt: skip
    result = subprocess.run(command, env=environ, cwd=PROJECT_ROOT, check=False)
    if result.returncode != 0:
        print("The run failed; its log is above.", file=sys.stderr)
        return result.returncode

    import duckdb

    with duckdb.connect(str(settings.warehouse), read_only=True) as connection:
        print(connection.sql(MARTS_QUERY))
        (quarantined,) = connection.execute(
            "SELECT COUNT(*) FROM quarantine.rejected_rows"
        ).fetchone()
    published = settings.effective_publish_dir / "marts.duckdb"
    print(f"The marts are in schema `marts` of the DuckDB file {settings.warehouse}")
    print(f"BI tools read the published copy: {published} (see docs/serving-bi.md)")
    print(f"Rows in quarantine.rejected_rows: {quarantined}")
    print(f"The deal-tracking chart: {settings.home / 'reports' / 'deal_tracking.html'}")
    print("Look at them from any shell with, for example:")
    code = (
        f"import duckdb; print(duckdb.connect({str(published)!r}, read_only=True)"
        f".sql({MARTS_QUERY!r}))"
    )
    print(f"  {python_command(code)}")
    return 0


def python_command(code: str) -> str:
    """A shell command running `code` with this interpreter, the project's: in a fresh shell,
    `python` is another one (or none), without duckdb."""
    # Inside double quotes a POSIX shell interprets only backslash, `"`, `$` and backquote: escaped,
    # the code arrives as written.
    quoted = re.sub(r'([\\"$`])', r"\\\1", code)
    return f'{shlex.quote(sys.executable)} -c "{quoted}"'


def dev(args: argparse.Namespace) -> int:
    environ = _dagster_environ(Settings.from_env())
    command = [_dagster_executable(), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), *args.rest]
    os.chdir(PROJECT_ROOT)
    # A shell starting us in the background leaves SIGINT ignored, and Dagster copies that
    # handler onto SIGTERM: the UI could then not be stopped. Restore the default first.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execve(command[0], command, environ)  # the UI owns the terminal and its signals from here


def data_docs(args: argparse.Namespace) -> int:
    """Every suite's page, and the warehouse's latest ingest and marts validated against them."""
    from relanalytics_pipeline.defs.quality.suites import build_data_docs, latest_frames
    from relanalytics_pipeline.warehouse import connect

    settings = Settings.from_env()
    out = Path(args.out).resolve() if args.out else settings.home / "data-docs"
    if settings.engine == "spark":
        from relanalytics_pipeline.defs.quality.suites import latest_frames_spark
        from relanalytics_pipeline.spark import spark_session

        # The Spark DataFrames are read as they are validated, inside the session.
        with spark_session(settings) as session:
            index, outcomes = build_data_docs(out, latest_frames_spark(session))
    elif settings.warehouse.exists():
        with connect(settings.warehouse, read_only=True) as connection:
            frames = latest_frames(connection)
        index, outcomes = build_data_docs(out, frames)
    else:
        print(f"No warehouse at {settings.warehouse}: the docs show the suites only.")
        index, outcomes = build_data_docs(out, {})
    for outcome in outcomes.values():
        print(outcome.summary())
    print(f"Data docs: {index}")
    return 0


def bi_superset(args: argparse.Namespace) -> int:
    """Set up Superset in its own virtualenv, import the dashboards, and serve them on loopback."""
    from relanalytics_pipeline.cli import superset

    settings = Settings.from_env()
    published = (
        Path(args.published) if args.published else settings.effective_publish_dir / "marts.duckdb"
    )
    started = time.perf_counter()
    try:
        uri = args.database_uri or superset.duckdb_uri(published)
        instance = superset.set_up(settings.home / "superset", uri)
    except superset.SupersetSetupError as error:
        print(error, file=sys.stderr)
        return 1
    print(
        f"Superset is set up in {time.perf_counter() - started:.0f} s; its state: {instance.home}"
    )
    print(f"Open http://{superset.HOST}:{args.port}/dashboard/list/")
    print(f"Log in as {superset.ADMIN} with the password {instance.password}")
    if args.no_serve:
        return 0
    print("Stop it with Ctrl+C.", flush=True)
    command = superset.run_command(args.port)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as for `dev`: a background start ignores it
    os.execve(command[0], command, instance.environ())


def erase(args: argparse.Namespace) -> int:
    """Erase a person (docs/privacy.md): the warehouse's raw rows and quarantine, then a run of
    every asset for the as-of day (marts, history, model, publication), then the copies that run
    leaves (older Parquet versions and model pickles, the warehouse's freed blocks)."""
    from relanalytics_pipeline.defs.privacy import erasure as privacy
    from relanalytics_pipeline.defs.privacy.people import identifier

    settings = Settings.from_env()
    settings.check_as_of()
    kind, value = next((k, v) for k, v in (("email", args.email), ("contact", args.contact_id),
                                           ("user", args.user_id)) if v)  # fmt: skip
    person = identifier(kind, value)
    person_hash = privacy.hash_for(settings, person)
    if args.print_hash:
        print(person_hash)
        return 0
    environ = _dagster_environ(settings)
    try:
        privacy.erase_person(settings, person_hash, environ, print, known_values=[person])
    except privacy.ErasureError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relanalytics", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write a synthetic CRM in the canonical format")
    gen.add_argument("--activities", type=int, required=True, help="number of activities")
    gen.add_argument("--out", required=True, help="landing folder to write")
    gen.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    gen.add_argument("--as-of", help="last day of the history, YYYY-MM-DD (default: the run's)")
    gen.add_argument("--format", choices=("parquet", "csv", "jsonl"), default="parquet")
    gen.set_defaults(handler=generate)

    run = commands.add_parser("demo", help="generate sample data if needed and run everything")
    run.add_argument("--activities", type=int, default=SAMPLE_ACTIVITIES)
    run.set_defaults(handler=demo)

    ui = commands.add_parser("dev", help="start the Dagster UI (extra arguments go to dagster dev)")
    ui.set_defaults(handler=dev)

    docs = commands.add_parser("data-docs", help="build great-expectations' HTML data docs")
    docs.add_argument("--out", help="folder to write (default: $RELANALYTICS_HOME/data-docs)")
    docs.set_defaults(handler=data_docs)

    bi = commands.add_parser("bi", help="dashboards in a BI tool, reading the published marts")
    tools = bi.add_subparsers(dest="tool", required=True)
    sup = tools.add_parser(
        "superset", help="set up Apache Superset with the dashboards and serve it"
    )
    sup.add_argument("--port", type=int, default=8088, help="port on 127.0.0.1 (default 8088)")
    sup.add_argument("--published", help="the published marts.duckdb (default: this home's)")
    sup.add_argument(
        "--database-uri", help="read the marts there instead, e.g. the PostgreSQL publication's"
    )
    sup.add_argument("--no-serve", action="store_true", help="set up and import only")
    sup.set_defaults(handler=bi_superset)

    gone = commands.add_parser("erase", help="erase a person from every copy (docs/privacy.md)")
    who = gone.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="an email address of the person")
    who.add_argument("--contact-id", help="the contact_id of the person's contact record")
    who.add_argument("--user-id", help="the user_id of the person's user record")
    gone.add_argument(
        "--print-hash", action="store_true",
        help="only print the salted hash, for the Dagster job erase_person (erases nothing)",
    )  # fmt: skip
    gone.set_defaults(handler=erase)

    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "dev":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    try:
        return args.handler(args)
    except SettingError as error:
        # Checked before any work: the one line says which variable to change.
        print(f"relanalytics {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
