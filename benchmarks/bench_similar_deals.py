"""Similar won deals at scale: fit, evaluate and score on a synthetic feature frame.

    .venv/bin/python benchmarks/bench_similar_deals.py --closed 200000 --open 50000

The frame has the columns of intermediate.int_opportunity_features that the model reads, drawn
as the generator draws opportunities (value from product, account size and industry), so the
pipeline's dbt part is not measured here (bench_pipeline.py does that). Each size runs in a child
process of its own, and its peak memory is the child's maximum resident set (os.wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import pandas as pd

from relanalytics_pipeline.cli import generator
from relanalytics_pipeline.defs.learn import similar_deals


def feature_frame(closed: int, open_: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = closed + open_
    product = rng.integers(0, len(generator.PRODUCTS), n)
    employees = np.round(rng.lognormal(5.5, 1.5, n)) + 5
    industry = rng.choice(generator.INDUSTRIES, n).astype(object)
    estimated = generator.estimated_values(product, employees, industry, rng.lognormal(0, 0.4, n))
    state = np.where(np.arange(n) < open_, "open", np.where(rng.random(n) < 0.55, "won", "lost"))
    return pd.DataFrame(
        {
            "opportunity_id": np.char.mod("opp-%07d", np.arange(n)).astype(object),
            "state_as_of": state.astype(object),
            "estimated_value": estimated,
            "actual_value": np.where(
                state == "won", np.round(estimated * rng.uniform(0.8, 1.2, n), -2), np.nan
            ),
            "account_employees": employees,
            "account_annual_revenue": np.round(employees * rng.lognormal(11.5, 0.6, n), -3),
            "product": generator.PRODUCTS[product].astype(object),
            "account_industry": industry,
            "account_country": rng.choice(generator.COUNTRIES, n).astype(object),
            "owner_team": rng.choice(generator.TEAMS, n).astype(object),
        }
    )


def run(closed: int, open_: int) -> dict:
    """One size, in this process: seconds per stage and the evaluation's figures."""
    frame = feature_frame(closed, open_)
    params = similar_deals.Params()
    seconds = {}
    start = time.perf_counter()
    model = similar_deals.fit(frame, params)
    seconds["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    rows = model.similar(frame[frame["state_as_of"] == "open"])
    seconds["score"] = time.perf_counter() - start
    start = time.perf_counter()
    evaluation = similar_deals.evaluate(frame, params)
    seconds["evaluate"] = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(rows), "won": model.training["won"], **evaluation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--closed", type=int, action="append")
    parser.add_argument("--open", type=int, action="append")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = list(zip(args.closed or [20_000, 200_000], args.open or [5_000, 50_000], strict=True))
    if args.child:
        print(json.dumps(run(*sizes[0])))
        return
    for closed, open_ in sizes:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.dup2(write, 1)
            os.execv(sys.executable, [sys.executable, __file__, "--child",
                                      "--closed", str(closed), "--open", str(open_)])  # fmt: skip
        os.close(write)
        with os.fdopen(read) as pipe:
            result = json.loads(pipe.read())
        _, status, usage = os.wait4(pid, 0)
        if status:
            sys.exit(f"size {closed}/{open_} failed with status {status}")
        total = sum(result["seconds"].values())
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
        print(f"{closed:>8,} closed ({result['won']:,} won) + {open_:,} open: {total:.1f} s "
              f"({stages}), peak RSS {usage.ru_maxrss / 1024:.0f} MiB, {result['rows']:,} rows")  # fmt: skip
        figures = {k: v for k, v in result.items() if k not in {"seconds", "rows", "won"}}
        print("   evaluation: " + ", ".join(
            f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in figures.items()
        ))  # fmt: skip


if __name__ == "__main__":
    main()
