"""A sweep's report: one self-contained page, DIR/index.html, with its pictures beside it.

The trials table in Pareto rank order (rank 0 is the front of speed, content and style error),
speed-quality plots with the front highlighted, and each complete trial's sheet: the same
photos painted by its model. Every file is written atomically, index.html last, and none over
an existing one without `overwrite`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from palmbrush.atomic import Inputs, atomic_path, check_target

from .space import OBJECTIVES, REFERENCE, SPEED, describe, describe_weights

QUALITY = {
    "content_error": "content error",
    "style_error": "style error",
    "stability_ratio": "stability, x the input's floor",
}
TILE = 240  # long side of a picture in a sheet
FRAMES = 3  # evenly spaced frames taken from a video given as a photo


@dataclass
class Row:
    """A complete trial as the report shows it."""

    number: int
    rank: int
    record: dict

    @property
    def metrics(self) -> dict:
        return self.record["metrics"]

    @property
    def sheet(self) -> str:
        return f"trial-{self.number:04d}.jpg"


def pareto_ranks(points: list[tuple[float, ...]], directions: list[str]) -> list[int]:
    """Non-dominated sorting: 0 for the front, 1 for the front of the rest, and so on."""
    signs = [1 if d == "minimize" else -1 for d in directions]
    costs = [tuple(s * v for s, v in zip(signs, p)) for p in points]
    ranks, left, rank = [0] * len(costs), set(range(len(costs))), 0
    while left:
        front = {i for i in left if not any(_dominates(costs[j], costs[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left, rank = left - front, rank + 1
    return ranks


def _dominates(a: tuple, b: tuple) -> bool:
    """a is no worse than b in every cost and better in one."""
    return all(x <= y for x, y in zip(a, b)) and a != b


def rows(study) -> list[Row]:
    """The complete trials with a record, best rank first, fastest first within a rank."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "record" in t.user_attrs]  # fmt: skip
    ranks = pareto_ranks([tuple(t.values) for t in done], list(OBJECTIVES.values()))
    out = [Row(t.number, r, t.user_attrs["record"]) for t, r in zip(done, ranks)]
    return sorted(out, key=lambda r: (r.rank, -r.metrics[SPEED]))


def read_photos(paths: list[Path], count: int) -> list[tuple[str, np.ndarray]]:
    """(name, picture) for files, folders (searched) and videos (a few frames), evenly spaced
    down to `count`, each at most TILE on its long side."""
    from .clips import gather

    return gather(paths, count, TILE, FRAMES)


def sheet(model: Path, photos: list[tuple[str, np.ndarray]], engines=None, threads=None):
    """The photos painted by `model`, captioned, in one row (a PIL image)."""
    from palmbrush.media.filters import load_style
    from palmbrush.media.sheet import labelled_grid

    stylize = load_style(model, engines, threads)
    return labelled_grid([(name, stylize(photo)) for name, photo in photos], len(photos))


def plot(table: list[Row], quality: str, tmp: str) -> None:
    """Speed against one quality metric: every trial, the 3-objective front in red, the
    front of these two as a line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    for front, colour in ((False, "0.6"), (True, "tab:red")):
        chosen = [r for r in table if (r.rank == 0) == front]
        ax.scatter([r.metrics[SPEED] for r in chosen], [r.metrics[quality] for r in chosen],
                   c=colour, label="front (all three)" if front else "other trials")  # fmt: skip
    for r in table:
        ax.annotate(str(r.number), (r.metrics[SPEED], r.metrics[quality]), fontsize=8)
    pair = [(r.metrics[SPEED], r.metrics[quality]) for r in table]
    ranks = pareto_ranks(pair, ["maximize", "minimize"])
    line = sorted(p for p, rank in zip(pair, ranks) if rank == 0)
    ax.step(*zip(*line), where="post", c="tab:red", lw=1, alpha=0.6)
    ax.set(xlabel=f"speed at 1280x720, x {REFERENCE}'s (timed in the same run)",
           ylabel=f"{QUALITY[quality]} (lower is better)")  # fmt: skip
    ax.legend()
    fig.savefig(tmp, format="png", bbox_inches="tight")


def write(study, fixed, out: Path, photos: list[tuple[str, np.ndarray]], *, inputs=(),
          overwrite: bool = False, engines=None, threads=None, log=print) -> Path:  # fmt: skip
    """DIR/index.html and its pictures; returns the page's path."""
    from palmbrush.media.images import write_image
    from palmbrush.media.sheet import labelled_grid

    table = rows(study)
    names = ["index.html", "photos.jpg", *(f"{q}.png" for q in QUALITY), *(r.sheet for r in table)]
    inputs = Inputs(inputs)
    for name in names:
        check_target(out / name, inputs, overwrite)
    write_image(out / "photos.jpg", np.asarray(labelled_grid(photos, len(photos))))
    for quality in QUALITY if table else ():
        with atomic_path(out / f"{quality}.png", keep_suffix=True) as tmp:
            plot(table, quality, tmp)
    drawn = []  # the trials whose model this machine has
    for r in table:
        model = Path(fixed.out) / r.record["model"]
        if model.is_file():
            write_image(out / r.sheet, np.asarray(sheet(model, photos, engines, threads)))
            log(f"trial {r.number}: sheet {out / r.sheet}")
            drawn.append(r)
        else:
            log(f"trial {r.number}: no sheet ({model} is not on this machine)")
    page = out / "index.html"
    with atomic_path(page) as tmp:
        Path(tmp).write_text(render(study, fixed, table, drawn), encoding="utf-8")
    return page


STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
td.l,th.l{text-align:left}tr.front{background:#fff2f0}img{max-width:100%}"""
COLUMNS = ["rank", "trial", f"x {REFERENCE} 1280x720", "fps 1280x720", "fps 640x480", "content",
           "style", "stability x floor",
           "KB", "parameters", "network", "training", "train s"]  # fmt: skip


def render(study, fixed, table: list[Row], drawn: list[Row]) -> str:
    """The page: settings, plots, the table, the sheets, the trials that did not complete."""
    e = html.escape
    head = "".join(f'<th class="{"l" if c in ("network", "training") else ""}">{e(c)}</th>'
                   for c in COLUMNS)  # fmt: skip
    body = "\n".join(_table_row(r) for r in table)
    plots = "".join(f'<img src="{q}.png" alt="speed vs {QUALITY[q]}">' for q in QUALITY)
    sheets = "\n".join(
        f'<h3 id="trial-{r.number}">trial {r.number}: {e(describe(r.record["settings"]["arch"]))}'
        f' | {e(describe_weights(r.record["settings"]))}</h3><img src="{r.sheet}" alt="">'
        for r in drawn
    )  # fmt: skip
    missing = [str(r.number) for r in table if r not in drawn]
    if missing:
        sheets += f"<p>No sheet (its model is not on this machine): {', '.join(missing)}.</p>"
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>sweep {e(study.study_name)}</title><style>{STYLE}</style></head><body>
<h1>Sweep {e(study.study_name)}</h1>
<p>{e(Path(fixed.painting).name)}: {fixed.steps} steps at most, {fixed.size}-px crops, batch
{fixed.batch}, loss network {e(Path(fixed.loss_net).name)}; {len(table)} complete trials.
Objectives: the most speed at 1280x720 as a multiple of the {REFERENCE} preset's (timed
alternately in the same run, so trials timed under different loads compare), the least content
and style error (on {len(fixed.photos)} held-aside photos, the painting at 384 px). Rank 0 is
the Pareto front. fps figures are as measured, under whatever else the machine ran.</p>
{plots if table else ""}
<table><tr>{head}</tr>
{body}</table>
{_failures(study)}
<h2>Sheets</h2><p>The same photos painted by each trial's model:</p>
<img src="photos.jpg" alt="the photos">
{sheets}
</body></html>
"""


def _table_row(r: Row) -> str:
    m, s = r.metrics, r.record["settings"]
    cells = [r.rank, f'<a href="#trial-{r.number}">{r.number}</a>', f"{m[SPEED]:.2f}",
             f"{m['fps_1280x720']:.1f}", f"{m['fps_640x480']:.1f}", f"{m['content_error']:.4g}",
             f"{m['style_error']:.4g}", f"{m['stability_ratio']:.2f}", f"{m['bytes'] / 1024:.0f}",
             f"{int(m['parameters']):,}"]  # fmt: skip
    text = [describe(s["arch"]), describe_weights(s)]
    tds = "".join(f"<td>{c}</td>" for c in cells)
    tds += "".join(f'<td class="l">{html.escape(t)}</td>' for t in text)
    tds += f"<td>{r.record['train']['seconds']:.0f}</td>"
    return f'<tr class="{"front" if r.rank == 0 else ""}">{tds}</tr>'


def _failures(study) -> str:
    """The trials that are not complete: why, and which trial runs each one again."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    again = {t.user_attrs["retry_history"][-1]: t.number
             for t in trials if t.user_attrs.get("retry_history")}  # fmt: skip
    items = [f"<li>trial {t.number}: {t.state.name.lower()}{_why(t, again.get(t.number))}</li>"
             for t in trials if t.state != TrialState.COMPLETE]  # fmt: skip
    return f"<h2>Trials not complete</h2><ul>{''.join(items)}</ul>" if items else ""


def _why(trial, retry: int | None) -> str:
    error = trial.user_attrs.get("error")
    if error is None and trial.state.name == "FAIL":  # failed by another worker's stale check
        error = "its worker stopped (no heartbeat)"
    text = f": {html.escape(error)}" if error else ""
    return text + (f" (run again as trial {retry})" if retry is not None else "")
