"""Freeing what a killed run leaves behind, before the next run needs it.

A run whose processes died without a word (kill -9, out of memory, a reboot) stays STARTED in
Dagster's records, and the pool slot its step held for the warehouse stays claimed: every later
run would wait on that slot for ever. Dagster's run monitoring cannot see such a run on this
machine's default run launcher (it has no worker health check), so the project's own executor
looks first: a run of this instance whose recorded processes no longer exist is marked failed and
its slots are freed. The same happens when the nightly schedule or the landing sensor fires.

Runs of this instance run on this machine: the warehouse is a local DuckDB file, so a process id
recorded by a run is one of this machine's.
"""

import logging
import os
from pathlib import Path

import dagster as dg

# Statuses of a run that has not ended; a run STARTING without any process recorded yet is left to
# run monitoring's start timeout.
UNFINISHED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def free_dead_runs(
    instance: dg.DagsterInstance, log: logging.Logger, current_run_id: str | None = None
) -> list[str]:
    """Mark failed every unfinished run whose processes are all gone, free the pool slots of
    every ended run that still holds some, and return the ids of the runs marked failed."""
    failed = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        if run.run_id == current_run_id:
            continue
        processes = _recorded_processes(instance, run.run_id)
        if not processes or any(_alive(pid, since) for pid, since in processes.items()):
            continue
        message = (
            f"Run {run.run_id} was still marked {run.status.value}, but none of its processes "
            f"({', '.join(map(str, sorted(processes)))}) exists any more: it was killed or "
            "crashed. Marked failed so that its slot of the warehouse pool is freed."
        )
        log.warning(message)
        instance.report_run_failed(run, message=message)
        failed.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                if freed := storage.free_concurrency_slots_for_run(run_id):
                    log.warning(f"Freed {freed} pool slot(s) still held by ended run {run_id}")
    return failed


def _recorded_processes(instance: dg.DagsterInstance, run_id: str) -> dict[int, float]:
    """Process id -> when it was recorded, for the run worker and step processes of a run."""
    processes = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            processes.setdefault(int(pid.value), entry.timestamp)
    return processes


def _alive(pid: int, recorded_at: float) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user's process
    started = _started_at(pid)
    # A process that started after the run recorded this id is a later one that reuses it.
    return started is None or started <= recorded_at + 1


def _started_at(pid: int) -> float | None:
    """When a process started (epoch seconds), on Linux; None where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration):
        return None
    # Field 22 counts clock ticks since boot; the command name (field 2) may hold spaces.
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


class _FreeDeadRunsFirst(dg.Executor):
    """An executor that first frees what dead runs hold: the next run's own clean-up, done before
    any of its steps asks the pool for a slot."""

    def __init__(self, inner: dg.Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    def execute(self, plan_context, execution_plan):
        free_dead_runs(plan_context.instance, plan_context.log, plan_context.run_id)
        yield from self._inner.execute(plan_context, execution_plan)


@dg.executor(name="in_process", config_schema=dg.in_process_executor.config_schema)
def in_process_freeing_dead_runs(init_context):
    """Dagster's in-process executor (same config), which first frees what dead runs hold."""
    return _FreeDeadRunsFirst(dg.in_process_executor.executor_creation_fn(init_context))
