"""The deal-tracking bubble chart: estimated close date against relationship health.

One bubble per row of `marts.deal_tracking`: its area is the estimated revenue, its colour the
stage's (the mart's `stage_color_hex`); an opportunity without a score is drawn grey at zero.
Two renderings of the same points: a PNG (matplotlib, drawn offline; plotly's static export would
need a browser) and a self-contained interactive HTML page (bokeh with its JavaScript inlined)
where hovering shows a deal (with its warnings: how many, and the top one's reason) and clicking
it opens its `record_url` in the CRM.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# Legend order: the stages as a deal moves through them, then deals without a score.
STAGE_ORDER = ("qualify", "develop", "propose", "close")
NO_SCORE_COLOR = "#9E9E9E"
NO_SCORE_LABEL = "no score yet"
# The largest bubble's area, in square points (PNG) and its diameter in pixels (HTML); the others
# scale by area, so that twice the revenue looks twice as big.
MAX_AREA_POINTS = 1600.0
MAX_DIAMETER_PIXELS = 60.0
MIN_DIAMETER_PIXELS = 6.0


@dataclass(frozen=True)
class ChartFiles:
    png: Path
    html: Path


def chart_points(deals: pd.DataFrame) -> pd.DataFrame:
    """The mart's rows as plotted: score 0 and grey where there is none, relative bubble area."""
    points = deals.copy()
    has_score = points["health_score"].notna()
    points["y"] = points["health_score"].where(has_score, 0).astype(float)
    points["color"] = points["stage_color_hex"].where(has_score, NO_SCORE_COLOR)
    points["color"] = points["color"].fillna(NO_SCORE_COLOR)
    points["legend"] = points["stage"].where(has_score, NO_SCORE_LABEL).fillna(NO_SCORE_LABEL)
    value = pd.to_numeric(points["estimated_value"], errors="coerce").astype(float).clip(lower=0)
    largest = value.max()
    points["area_share"] = (value / largest).fillna(0) if largest and largest > 0 else 0.0
    points["x"] = pd.to_datetime(points["estimated_close_date"])
    # Legend order (bokeh lists groups as they come), larger bubbles first so that small ones
    # stay visible on top.
    rank = {legend: i for i, legend in enumerate(_legend_order(points))}
    points["legend_rank"] = points["legend"].map(rank)
    return points.sort_values(["legend_rank", "area_share"], ascending=[True, False])


def draw_png(points: pd.DataFrame, as_of: dt.date, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(11, 6), dpi=100)
    try:
        for _, group in points.groupby("legend_rank", sort=True):
            axes.scatter(
                group["x"],
                group["y"],
                s=group["area_share"] * MAX_AREA_POINTS + 20,
                c=group["color"].tolist(),
                alpha=0.65,
                edgecolors="white",
                linewidths=0.8,
                label=group["legend"].iloc[0],
            )
        axes.set_ylim(-8, 108)
        axes.set_xlabel("Estimated close date")
        axes.set_ylabel("Relationship health")
        axes.set_title(f"Deal tracking as of {as_of.isoformat()}: {len(points)} open deals")
        axes.grid(alpha=0.3)
        if len(points):
            legend = axes.legend(title="Stage", loc="upper left", bbox_to_anchor=(1.01, 1))
            for handle in legend.legend_handles:
                handle.set_sizes([80])
        figure.autofmt_xdate()
        figure.tight_layout()
        _write_atomically(path, lambda tmp: figure.savefig(tmp, format="png"))
    finally:
        plt.close(figure)


def write_html(points: pd.DataFrame, as_of: dt.date, path: Path) -> None:
    from bokeh.embed import file_html
    from bokeh.models import ColumnDataSource, HoverTool, OpenURL, TapTool
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    columns = {
        "x": points["x"],
        "y": points["y"],
        "size": [
            max(MIN_DIAMETER_PIXELS, MAX_DIAMETER_PIXELS * math.sqrt(share))
            for share in points["area_share"]
        ],
        "color": points["color"],
        "legend": points["legend"],
        "name": points["name"].fillna(""),
        "company": points["company_name"].fillna(""),
        "stage": points["stage"].fillna(""),
        "value": [_money(v) for v in points["estimated_value"]],
        "close": points["x"].dt.strftime("%Y-%m-%d"),
        "health": [
            f"{int(s)} ({status})" if pd.notna(s) else str(status)
            for s, status in zip(points["health_score"], points["health_status"], strict=True)
        ],
        "warnings": [
            warning_text(count, reason)
            for count, reason in zip(points["warnings"], points["top_warning_reason"], strict=True)
        ],
        "owner": points["owner_id"].fillna(""),
        "record_url": points["record_url"].fillna(""),
    }
    table = pd.DataFrame({name: list(values) for name, values in columns.items()})
    plot = figure(
        title=f"Deal tracking as of {as_of.isoformat()}: {len(points)} open deals",
        x_axis_type="datetime",
        x_axis_label="Estimated close date",
        y_axis_label="Relationship health",
        y_range=(-8, 108),
        width=1000,
        height=560,
        tools="pan,wheel_zoom,box_zoom,reset,save",
        sizing_mode="stretch_width",
    )
    # One renderer per legend entry, in the PNG's order (bokeh sorts legend groups by name).
    bubbles = [
        plot.scatter(
            "x",
            "y",
            size="size",
            color="color",
            alpha=0.65,
            line_color="white",
            legend_label=legend,
            source=ColumnDataSource(table[table["legend"] == legend]),
        )  # fmt: skip
        for legend in table["legend"].unique()
    ]
    plot.add_tools(
        HoverTool(
            renderers=bubbles,
            tooltips=[
                ("Opportunity", "@name"),
                ("Company", "@company"),
                ("Stage", "@stage"),
                ("Estimated revenue", "@value"),
                ("Estimated close", "@close"),
                ("Health", "@health"),
                ("Warnings", "@warnings"),
                ("Owner", "@owner"),
                ("", "click to open in the CRM"),
            ],
        ),
        TapTool(renderers=bubbles, callback=OpenURL(url="@record_url")),
    )
    plot.legend.title = "Stage"
    plot.legend.location = "top_left"
    html = file_html(plot, resources=INLINE, title=f"Deal tracking as of {as_of.isoformat()}")
    _write_atomically(path, lambda tmp: tmp.write_text(html, encoding="utf-8"))


def draw_deal_tracking(deals: pd.DataFrame, as_of: dt.date, folder: Path) -> ChartFiles:
    """Both renderings of the deal-tracking chart, written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    files = ChartFiles(png=folder / "deal_tracking.png", html=folder / "deal_tracking.html")
    points = chart_points(deals)
    draw_png(points, as_of, files.png)
    write_html(points, as_of, files.html)
    return files


def warning_text(count, top_reason) -> str:
    """A deal's warnings for the hover: how many, and the most severe one's reason."""
    if pd.isna(count) or int(count) == 0:
        return "none"
    return f"{int(count)}, the most severe: {top_reason}"


def _legend_order(points: pd.DataFrame) -> list[str]:
    present = set(points["legend"])
    known = [*STAGE_ORDER, NO_SCORE_LABEL]
    return [s for s in known if s in present] + sorted(present - set(known))


def _money(value) -> str:
    return "" if pd.isna(value) else f"{float(value):,.0f}"


def _write_atomically(path: Path, write) -> None:
    """Readers (a browser, a BI portal) see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)
