"""`palmbrush inspect MODEL [--size WxH]`: inputs, outputs, ops, parameters, MACs, engine plan."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="describe a model and the engine plan for it")
    p.add_argument("model", help="an ONNX file or a built-in style name")
    p.add_argument("--size", help="frame size WxH for shapes, MACs and memory (e.g. 640x480)")
    p.add_argument("--engines", help="engine preference, comma separated (default: best)")
    p.add_argument("--no-optimize", action="store_true", help="skip the graph passes")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.runtime import load_model
    from palmbrush.runtime.executor import Predictor
    from palmbrush.runtime.stats import op_counts, parameter_count, total_macs
    from palmbrush.styles import model_path

    from .common import human, input_shapes, parse_size, table

    args.model = model_path(args.model)
    graph = load_model(args.model)
    loaded = op_counts(graph)
    print(f"model: {args.model}  (opset {graph.opset}, {len(graph.nodes)} nodes)")
    predictor = Predictor(graph, engines=args.engines, optimize=not args.no_optimize)
    graph = predictor.graph  # the predictor's own copy, after its graph passes
    for title, values in (("inputs", predictor.inputs), ("outputs", predictor.outputs)):
        print(f"{title}:")
        for v in values:
            dims = (
                "?" if v.shape is None else "x".join("?" if d is None else str(d) for d in v.shape)
            )
            print(f"  {v.name}: {v.dtype} [{dims}]")
    print(f"ops: {_counts(loaded)}")
    if predictor.rewrites:
        done = ", ".join(f"{k} {v}" for k, v in predictor.rewrites.items() if v) or "none"
        print(f"after graph passes ({done}): {len(graph.nodes)} nodes: {_counts(op_counts(graph))}")
    print(f"parameters: {parameter_count(graph):,}")
    if args.size:
        size = parse_size(args.size)
        shapes = input_shapes(predictor, size)
        values = predictor.shapes(shapes)
        mem = predictor.memory_plan(shapes)
        print(
            f"at {args.size}: {human(total_macs(graph, values))} MACs; intermediates "
            f"{mem.naive_bytes / 2**20:.1f} MiB, {mem.arena_bytes / 2**20:.1f} MiB "
            f"after buffer reuse"
        )
        skipped = predictor.specialized(shapes)
        folded = sum(1 for how in skipped.values() if how == "folded")
        print(
            f"at {args.size}: {len(graph.nodes) - len(skipped)} nodes run; {folded} folded "
            f"(shape arithmetic), {len(skipped) - folded} no-ops (empty pads, full slices)"
        )
    engines = ", ".join(getattr(e, "NAME", str(e)) for e in predictor.engines)
    plan = predictor.plan
    if args.size and predictor.measured:
        plan = predictor.plan_at(shapes)
        how = "measured on this machine" if predictor.tuned_at(shapes) else (
            "not measured here yet: the first run at this size measures")  # fmt: skip
        print(f"engine plan at {args.size} ({how}; engines: {engines}):")
    else:
        print(f"engine plan (preference: {engines}):")
    moves = any(c.transfers for c in plan)  # moved to a device, or converted to planar, first
    rows = [
        [c.node, c.op, c.engine, *(["; ".join(c.transfers)] if moves else []),
         "; ".join(f"{k}: {v}" for k, v in c.declined.items())]
        for c in plan
    ]  # fmt: skip
    print(table(rows, ["node", "op", "engine", *(["transfers"] if moves else []), "declined"]))
    return 0


def _counts(counter) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(counter.items()))
