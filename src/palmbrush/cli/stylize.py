"""`palmbrush stylize INPUT... [--style NAME|MODEL.onnx] [-o OUT]`: photos, folders, videos."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from palmbrush.cli.args import THREADS, UNIT, float_in, int_in
from palmbrush.contract import MAX_SIDE, MIN_SIDE
from palmbrush.media import X264_PRESET, X264_PRESETS


def add_parser(sub) -> None:
    p = sub.add_parser("stylize", help="turn photos, folders and videos into paintings")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image or video files, folders (recursively), or - for stdin")  # fmt: skip
    p.add_argument("--style", default="starry-night",
                   help="a built-in style (palmbrush styles) or a style model file (.onnx); "
                        "default starry-night")  # fmt: skip
    p.add_argument("-o", "--output", help="output file (one input) or folder; - for stdout")
    p.add_argument("--strength", type=UNIT, default=1.0, help="0..1: blend with the original")
    p.add_argument("--preserve-color", action="store_true", help="keep the original colours")
    p.add_argument("--max-size", type=int_in(MIN_SIDE, MAX_SIDE),
                   help="run the model with the longer side at most this")  # fmt: skip
    p.add_argument("--scale", type=float_in(0.0, 1.0, open_low=True), default=1.0,
                   help="run the model at this scale (0..1]")  # fmt: skip
    p.add_argument("--engine", help="engine preference: cpu, torch,cpu, auto... (default: best)")
    p.add_argument("--threads", type=THREADS, default=None,
                   help="the model's threads (default: the cores; a video runs that many "
                        "frames at once, one thread each)")  # fmt: skip
    p.add_argument("--codec", help="video codec (default: H.264; VP9 for .webm)")
    p.add_argument("--crf", type=int_in(0, 50), default=18, help="video quality (lower: better)")
    p.add_argument(
        "--preset",
        choices=X264_PRESETS,
        default=X264_PRESET,
        help=f"x264's speed for smaller files (default {X264_PRESET}: real time)",
    )
    p.add_argument(
        "--rgb",
        action="store_true",
        help="convert video frames to RGB outside the model (default: the YUV path)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run each input as one task on the Dask scheduler at ADDRESS "
                        "(tcp://host:8786); paths must be the same on every worker")  # fmt: skip
    p.set_defaults(run=run)


@dataclass
class Outcome:
    input: str
    output: str | None = None
    ok: bool = False
    error: str | None = None
    kind: str = "image"
    frames: int = 1
    seconds: float = 0.0
    fps: float | None = None
    stages: dict[str, dict] = field(default_factory=dict)  # a video's: pipeline.StageTimes
    workers: int | None = None  # a video's models stylizing side by side
    colour: str | None = None  # a video's: 'yuv420p' or 'rgb (why)'
    dropped: list[str] = field(default_factory=list)  # what the output could not carry
    notes: list[str] = field(default_factory=list)  # what was changed to make it work
    worker: str | None = None  # with --dask: the worker that ran it


def run(args: argparse.Namespace) -> int:
    from palmbrush.media import images, video

    jobs = _jobs(args, images.EXTENSIONS | video.READS)
    inputs = _inputs(jobs, args.style)
    if len(jobs) == 1:  # one input: every mistake in the command line shows before any work
        _check_job(*jobs[0], inputs, args.overwrite)
    if args.dask:
        outcomes = _on_cluster(jobs, args)
    else:
        args.threads = args.threads or os.cpu_count()
        style = functools.cache(lambda: _load_style(args))  # photos only: videos load their own
        outcomes = []
        for number, (source, target) in enumerate(jobs, 1):
            outcome = _job(source, target, args, inputs, style, number, len(jobs))
            if outcome.error:
                print(f"palmbrush: {outcome.error}", file=sys.stderr)
            outcomes.append(outcome)
            if len(jobs) > 1 and not args.json and sys.stderr.isatty():
                print(f"\r{number}/{len(jobs)} done", end="", file=sys.stderr)
    failed = [o for o in outcomes if not o.ok]
    if args.json:
        print(json.dumps([asdict(o) for o in outcomes], indent=2))
    elif not (len(jobs) == 1 and jobs[0][1] == "-"):
        for o in outcomes:
            if o.ok:
                print(f"{o.input} -> {o.output}  {_summary(o)}")
        if len(jobs) > 1:
            print(f"{len(outcomes) - len(failed)} stylized, {len(failed)} failed")
    return 1 if failed else 0


def _job(source, target, args, inputs, style, number: int, count: int, *,
         alone: bool = True) -> Outcome:  # fmt: skip
    """Input `number` of `count` to its output; a user's mistake becomes the outcome's error
    (raised when it is the only input and `alone`). style() gives the loaded style for photos."""
    from palmbrush.errors import PalmbrushError

    label = "stdin" if source == "-" else str(source)
    outcome = Outcome(label, None if target is None else str(target))
    start = time.perf_counter()
    try:
        if _check_job(source, target, inputs, args.overwrite) == "video":
            _video(source, target, args, outcome, number, count)
        else:
            _image(source, target, style(), outcome)
        outcome.ok = True
    except PalmbrushError as exc:
        outcome.error = str(exc)
        if count == 1 and alone:
            raise
    outcome.seconds = round(time.perf_counter() - start, 3)
    return outcome


def _on_cluster(jobs: list[tuple], args) -> list[Outcome]:
    """Each job as one task on the Dask cluster at --dask (media/cluster.py)."""
    from palmbrush.errors import PalmbrushError
    from palmbrush.media import cluster

    if any(source == "-" or target == "-" for source, target in jobs):
        raise PalmbrushError("--dask works on files: stdin and stdout stay on this machine")
    sources = [str(Path(s).absolute()) for s, _ in jobs]  # each task checks against them all
    work = [(source, str(Path(t).absolute()), sources, args, i, len(jobs))
            for i, (source, (_, t)) in enumerate(zip(sources, jobs), 1)]  # fmt: skip

    def failed(job, message: str) -> Outcome:
        return Outcome(job[0], job[1], error=message)

    def done(i: int, outcome: Outcome) -> None:
        if outcome.error and len(jobs) > 1:  # one input: its error is raised below
            print(f"palmbrush: {outcome.error}", file=sys.stderr)
        elif not args.json and sys.stderr.isatty():
            print(f"{i + 1}: {outcome.input} done on {outcome.worker}", file=sys.stderr)

    with cluster.connect(args.dask) as client:
        outcomes = cluster.run_tasks(client, _cluster_task, work, failed=failed, done=done)
    for outcome, (source, target) in zip(outcomes, jobs):  # as given, not as the workers saw
        outcome.input, outcome.output = str(source), str(target)
    if len(jobs) == 1 and outcomes[0].error:
        raise PalmbrushError(outcomes[0].error)
    return outcomes


_STYLES: dict = {}  # a worker's loaded styles, by what shapes them (the file's version too)


def _cluster_task(source: str, target: str, sources: list[str], args, number: int,
                  count: int) -> Outcome:  # fmt: skip
    """On a Dask worker: one job, with the worker's cores (unless --threads) and its own check
    that the output loses nothing (no input of the whole run written over); the loaded style
    stays for the worker's next photo while its file is unchanged."""
    from palmbrush.atomic import Inputs
    from palmbrush.media import cluster
    from palmbrush.styles import resolve

    args = argparse.Namespace(**vars(args))
    args.threads = args.threads or cluster.worker_threads()
    args.json = True  # no progress lines from a worker
    source_path, target_path = Path(source), Path(target)
    inputs = Inputs([resolve(args.style), *sources])

    def style():
        stat = resolve(args.style).stat()
        key = (args.style, stat.st_mtime_ns, stat.st_size, args.engine, args.threads,
               *_filters(args).values())  # fmt: skip
        if key not in _STYLES:
            _STYLES.clear()  # one style at a time per worker
            _STYLES[key] = _load_style(args)
        return _STYLES[key]

    outcome = _job(source_path, target_path, args, inputs, style, number, count, alone=False)
    outcome.worker = cluster.worker_name()
    return outcome


def _filters(args) -> dict:
    """The filters wrapped around the style model (filters.wrap's keywords)."""
    return {"strength": args.strength, "preserve_color": args.preserve_color,
            "scale": args.scale, "max_size": args.max_size}  # fmt: skip


def _load_style(args):
    """The style, wrapped with the filters and loaded once: frame (H, W, 3) -> painting."""
    from palmbrush.media.filters import load_style

    return load_style(args.style, args.engine, args.threads, **_filters(args))


def _jobs(args, extensions: set[str]) -> list[tuple]:
    """(input, output) pairs; output "-" is stdout. Without -o, outputs go next to their inputs
    (a folder: to FOLDER-STYLE/, mirroring its tree)."""
    from palmbrush.errors import PalmbrushError
    from palmbrush.styles import style_name

    out = args.output
    style = style_name(args.style)
    many = len(args.inputs) > 1 or any(Path(i).is_dir() for i in args.inputs if i != "-")
    jobs = []
    for item in args.inputs:
        if item == "-":
            if many:
                raise PalmbrushError("- (stdin) cannot be combined with other inputs")
            jobs.append(("-", Path(out) if out and out != "-" else "-"))
            continue
        source = Path(item)
        if source.is_dir():
            found = sorted(p for p in source.rglob("*") if p.suffix.lower() in extensions
                           and p.is_file() and not p.name.startswith("."))  # fmt: skip
            if not found:
                raise PalmbrushError(f"{source}: no images or videos inside")
            root = Path(out) if out else source.with_name(f"{source.name}-{style}")
            mirrored = [root / p.relative_to(source) for p in found]
            jobs += [(p, t.with_suffix(_output_suffix(p))) for p, t in zip(found, mirrored)]
        elif many:
            root = Path(out) if out else source.parent
            jobs.append((source, root / _default_name(source, style)))
        elif out == "-":
            jobs.append((source, "-"))
        elif out:
            target = Path(out)
            jobs.append(
                (source, target / _default_name(source, style) if target.is_dir() else target)
            )
        else:
            jobs.append((source, source.with_name(_default_name(source, style))))
    return jobs


def _default_name(source: Path, style: str) -> str:
    """photo.jpg -> photo.STYLE.jpg; clip.gif -> clip.STYLE.mp4 (.png for a still GIF)."""
    return f"{source.stem}.{style}{_output_suffix(source)}"


def _output_suffix(source: Path) -> str:
    """An output's type, by its input's: the same, but GIFs (which we do not write) become
    videos when animated and PNGs when still."""
    from palmbrush.media import images

    if source.suffix.lower() != ".gif":
        return source.suffix
    return ".mp4" if images.frame_count(source) > 1 else ".png"


def _inputs(jobs: list[tuple], style: str):
    """Every file the run reads (the style model too), identified once; two inputs whose
    outputs would be one file are refused here, before any work."""
    from palmbrush.atomic import Inputs
    from palmbrush.errors import PalmbrushError
    from palmbrush.styles import resolve

    seen: dict[Path, Path] = {}
    for source, target in jobs:
        if target != "-" and seen.setdefault(target.absolute(), source) != source:
            raise PalmbrushError(f"{target}: both {seen[target.absolute()]} and {source} "
                                 "would be written there")  # fmt: skip
    return Inputs([resolve(style), *(s for s, _ in jobs if s != "-")])


def _check_job(source, target, inputs, overwrite: bool) -> str:
    """'image' or 'video', after checking the output's type and that writing it loses nothing:
    no input is written over, and no existing file without --overwrite."""
    from palmbrush.atomic import check_target
    from palmbrush.errors import PalmbrushError
    from palmbrush.media import images, video

    suffix = "" if source == "-" else source.suffix.lower()
    kind = "video" if suffix in video.EXTENSIONS else "image"
    if target == "-":
        if kind == "video":
            raise PalmbrushError("videos cannot be written to stdout; pass -o FILE")
        return kind
    if suffix in video.READS and target.suffix.lower() in video.EXTENSIONS:
        kind = "video"  # an animated GIF (FFmpeg reads it) to a video file
    if kind == "video" and target.suffix.lower() not in video.EXTENSIONS:
        raise PalmbrushError(f"{target}: a video needs a video output "
                             f"({', '.join(sorted(video.EXTENSIONS))})")  # fmt: skip
    if kind == "image":
        images.image_format(target.suffix, str(target))
    check_target(target, inputs, overwrite)
    return kind


def _image(source, target, style, outcome: Outcome) -> None:
    from palmbrush.media import images

    if source == "-":
        picture = images.read_picture(sys.stdin.buffer.read(), "stdin")
    else:
        picture = images.read_picture(source)
    result = style(picture.rgb)
    suffix = ".png" if target == "-" else target.suffix
    if picture.alpha is not None and images.image_format(suffix) not in images.ALPHA_FORMATS:
        outcome.dropped.append(f"transparency (a {suffix} file cannot hold it)")
    if target == "-":
        sys.stdout.buffer.write(images.encode_image(result, suffix, picture.alpha))
        sys.stdout.buffer.flush()
    else:
        images.write_image(target, result, picture.alpha)
    outcome.output = "stdout" if target == "-" else str(target)


def _video_loader(args, workers: int, threads: int):
    """kind -> the model for one of `workers` video workers, with `threads` threads and its
    share of the plan cache: 'rgb' the style as for photos, 'yuv420p' the same wrapped to read
    and write the codec's planes."""
    from palmbrush.media.filters import PLAN_CACHE_BYTES, load_style

    def load(kind: str):
        return load_style(args.style, args.engine, threads, PLAN_CACHE_BYTES // workers,
                          colour=kind, **_filters(args))  # fmt: skip

    return load


def _video(source, target, args, outcome: Outcome, number: int, count: int) -> None:
    from palmbrush.media import video
    from palmbrush.media.streams import Encoding
    from palmbrush.runtime.interim import side_by_side

    show = sys.stderr.isatty() and not args.json

    def progress(done: int, total: int, seconds: float) -> None:
        if not show:
            return
        fps = done / seconds if seconds else 0.0
        eta = f", ETA {(total - done) / fps:.0f} s" if total and fps else ""
        of = f"/{total}" if total else ""
        print(f"\r[{number}/{count}] {source.name}: frame {done}{of}, {fps:.1f} fps{eta}   ",
              end="", file=sys.stderr, flush=True)  # fmt: skip

    encoding = Encoding(codec=args.codec, crf=args.crf, preset=args.preset)
    # the model's threads as workers of one thread each, when compiled kernels can run side by
    # side; else one worker with them all (interim.side_by_side)
    if side_by_side():
        workers, threads = args.threads, 1
    else:
        workers, threads = 1, args.threads
    result = video.stylize_video(
        source,
        target,
        _video_loader(args, workers, threads),
        encoding=encoding,
        workers=workers,
        yuv=not args.rgb,
        progress=progress,
    )

    if show:
        print(file=sys.stderr)
    outcome.kind, outcome.frames = "video", result.frames
    outcome.fps = round(result.sustained_fps, 2)
    outcome.stages = {k: {n: round(x, 3) for n, x in asdict(t).items()}
                      for k, t in result.stages.items()}  # fmt: skip
    outcome.workers, outcome.colour = result.workers, result.colour
    outcome.dropped = result.dropped
    if result.rescaled:
        outcome.notes.append(f"{result.rescaled} frames of another size stretched to "
                             f"{result.width}x{result.height}, the first frame's")  # fmt: skip


def _summary(o: Outcome) -> str:
    if o.kind != "video":
        dropped = f"; not kept: {', '.join(o.dropped)}" if o.dropped else ""
        return f"({o.seconds:.2f} s{dropped})"
    per = 1e3 / max(o.frames, 1)
    stages = ", ".join(
        f"{k} {per * t['busy']:.1f} busy + {per * (t['waiting_in'] + t['waiting_out']):.1f} blocked"
        for k, t in o.stages.items()
    )
    stages = f"ms/frame: {stages} ({o.workers} stylize workers; colour path {o.colour})"
    dropped = f"; not copied: {', '.join(o.dropped)}" if o.dropped else ""
    notes = "".join(f"; {note}" for note in o.notes)
    return f"({o.frames} frames, {o.fps} fps sustained; {stages}{dropped}{notes})"
