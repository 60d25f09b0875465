"""`erase_person`: the erasure as a Dagster job, for those who work in the Dagster UI.

Its config takes the person's salted hash, never an address or an id: Dagster keeps every run's
config in its run storage, where no erasure reaches. `relanalytics erase --email A --print-hash`
prints the hash (it needs the installation's salt).
"""

import os
import re

import dagster as dg

from relanalytics_pipeline.defs.privacy.erasure import ErasureError, erase_person
from relanalytics_pipeline.settings import Settings


class ErasureConfig(dg.Config):
    person_hash: (
        str  # from `relanalytics erase --email A --print-hash` (or --contact-id, --user-id)
    )


@dg.op
def erase_person_op(
    context: dg.OpExecutionContext, config: ErasureConfig, settings: dg.ResourceParam[Settings]
) -> None:
    """Erase the person from every copy: the raw rows and quarantine, then a run of every asset
    for the as-of day (marts, history, model, publication), then the copies it leaves behind."""
    settings.check_as_of()
    if not re.fullmatch(r"[0-9a-f]{64}", config.person_hash):
        raise dg.Failure(
            "person_hash: give the 64 hex digits `relanalytics erase --print-hash` prints"
        )
    environ = {**os.environ, **settings.as_environ()}
    try:
        erase_person(settings, config.person_hash, environ, context.log.info)
    except ErasureError as error:
        raise dg.Failure(str(error)) from None


@dg.job(name="erase_person", executor_def=dg.in_process_executor)
def erase_person_job():
    erase_person_op()
