"""The fast engines (torch: oneDNN; cpu: Numba) against the reference engine: every op they
claim, on odd and 1-pixel sizes, and which engine ran each node."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import CONV_CASES, SAMPLE, make_model
from hypothesis import assume, given, settings
from onnx import TensorProto, helper

from palmbrush.runtime import load

F = TensorProto.FLOAT
TOLERANCE = {"fp32": dict(rtol=1e-4, atol=1e-4)}  # conv sums differ in order from NumPy's
NEEDS = {"torch": "torch", "cpu": "numba"}


def _needs(engine: str):
    module = NEEDS[engine]
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"{module} is not installed")


ENGINES = [pytest.param(name, marks=_needs(name)) for name in NEEDS]


def _both(model, feeds, engine):
    blob = model.SerializeToString()
    ours = load(blob, engines=engine)
    plan = {c.node: c.engine for c in ours.plan}
    return ours.run(feeds), load(blob, engines="reference").run(feeds), plan


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=40, deadline=None)
@given(**CONV_CASES)
def test_convolutions_match_the_reference_on_odd_and_one_pixel_sizes(
    engine, size, k, stride, dilation, group, pad
):
    assume(min(size) + 2 * pad >= dilation * (k - 1) + 1)  # at least one output position
    rng = np.random.default_rng(k + 10 * stride)
    x = rng.normal(size=(1, 2 * group, *size)).astype(np.float32)
    w = rng.normal(size=(3 * group, 2, k, k)).astype(np.float32)
    b = rng.normal(size=3 * group).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", strides=[stride] * 2,
                            dilations=[dilation] * 2, group=group, pads=[pad] * 4)  # fmt: skip
    model = make_model([node], [("x", F, list(x.shape))], [("y", F, None)], {"w": w, "b": b})
    ours, ref, plan = _both(model, {"x": x}, engine)
    assert plan["conv"] == (engine if group == 1 or engine == "torch" else "reference")
    np.testing.assert_allclose(ours["y"], ref["y"], **TOLERANCE["fp32"])


ASYMMETRIC, ONE = [0, 0, 0, 2, 0, 0, 2, 0], [0, 0, 1, 1, 0, 0, 1, 1]  # ONNX Pad order


def _fused_model(pad_mode, activation, residual, size, upsample=1, pads=ASYMMETRIC):
    rng = np.random.default_rng(5)
    inits = {
        "p": np.array(pads),  # either way, a 3x3 conv keeps the size
        "w": rng.normal(size=(4, 4, 3, 3)).astype(np.float32),
        "b": rng.normal(size=4).astype(np.float32),
        "g": rng.uniform(0.5, 1.5, 4).astype(np.float32),
        "t": rng.normal(size=4).astype(np.float32),
        "s": np.array([1, 1, upsample, upsample], np.float32),
    }
    nodes = [
        helper.make_node("Resize", ["x", "", "s"], ["xu"], name="up", mode="nearest"),
        helper.make_node("Pad", ["xu", "p"], ["xp"], name="pad", mode=pad_mode),
        helper.make_node("Conv", ["xp", "w", "b"], ["c"], name="conv", pads=[0, 0, 0, 0]),
        helper.make_node("InstanceNormalization", ["c", "g", "t"], ["n"], name="norm"),
        helper.make_node(activation, ["n"], ["a"], name="act"),
    ]
    last = "a"
    if residual:  # the residual has the conv's output size: the upsampled input's
        nodes.append(helper.make_node("Resize", ["x", "", "s"], ["xr"], name="up2", mode="nearest"))
        nodes.append(helper.make_node("Add", ["a", "xr"], ["r"], name="add"))
        last = "r"
    nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    return make_model(nodes, [("x", F, [1, 4, *size])], [("y", F, None)], inits)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("pad_mode", ["reflect", "edge", "constant"])
@pytest.mark.parametrize("activation", ["Relu", "LeakyRelu", "Sigmoid"])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("upsample", [1, 2])
@pytest.mark.parametrize("pads", [ASYMMETRIC, ONE], ids=["asymmetric", "one"])
def test_fused_convs_match_the_reference(engine, pad_mode, activation, residual, upsample, pads):
    """Upsample 2 with one pixel of padding is the cpu engine's phase-split path."""
    for size in [(5, 7), (16, 3), (3, 3) if pad_mode == "reflect" else (1, 1)]:
        model = _fused_model(pad_mode, activation, residual, size, upsample, pads)
        x = np.random.default_rng(6).normal(size=(1, 4, *size)).astype(np.float32)
        ours, ref, plan = _both(model, {"x": x}, engine)
        fused = {"conv": engine, "out": "reference"}  # pad, upsample, norm, act, add: one node
        assert plan == (fused if not residual else {**fused, "up2": engine})
        # A 1-pixel input gives a constant feature map: instance norm then divides rounding
        # noise by sqrt(epsilon), about 1/316, so summation order shows up 300x larger.
        tolerance = dict(rtol=1e-3, atol=1e-3) if size == (1, 1) else TOLERANCE["fp32"]
        np.testing.assert_allclose(ours["y"], ref["y"], **tolerance)


@pytest.mark.parametrize("engine", ENGINES)
def test_nearest_upsampling_runs_fast_and_linear_only_on_the_cpu_engine(engine):
    scales = np.array([1, 1, 2, 2], np.float32)
    nearest = helper.make_node("Resize", ["x", "", "s"], ["n"], name="nearest", mode="nearest")
    linear = helper.make_node("Resize", ["x", "", "s"], ["l"], name="linear", mode="linear")
    outputs = [("n", F, None), ("l", F, None)]
    model = make_model([nearest, linear], [("x", F, [1, 2, 3, 5])], outputs, {"s": scales})
    predictor = load(model.SerializeToString(), engines=engine)
    plan = {c.node: c for c in predictor.plan}
    assert plan["nearest"].engine == engine
    if engine == "torch":
        assert plan["linear"].engine == "reference"
        assert plan["linear"].declined == {engine: "mode linear (nearest only)"}
    else:
        assert plan["linear"].engine == "cpu"
    x = np.random.default_rng(7).normal(size=(1, 2, 3, 5)).astype(np.float32)
    ref = load(model.SerializeToString(), engines="reference").run({"x": x})
    ours = predictor.run({"x": x})
    np.testing.assert_array_equal(ours["n"], ref["n"])
    np.testing.assert_allclose(ours["l"], ref["l"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["linear", "cubic", "nearest"])
@pytest.mark.parametrize(
    "transform", ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
)
@pytest.mark.parametrize(("shape", "sizes"), [((1, 37, 53, 3), (1, 19, 80, 3)),  # NHWC frame
                                              ((1, 2, 5, 4), (1, 2, 1, 9)),
                                              ((1, 3, 1, 1), (1, 3, 4, 3))])  # fmt: skip
def test_the_cpu_engine_resamples_like_the_reference(mode, transform, shape, sizes):
    """Down and up, to and from one pixel, NHWC and NCHW: the filters' Resize on the cpu engine."""
    pytest.importorskip("numba")
    node = helper.make_node("Resize", ["x", "", "", "z"], ["y"], name="resize", mode=mode,
                            coordinate_transformation_mode=transform)  # fmt: skip
    model = make_model([node], [("x", F, list(shape))], [("y", F, None)], {"z": np.array(sizes)})
    x = np.random.default_rng(8).normal(size=shape).astype(np.float32)
    ours, ref, plan = _both(model, {"x": x}, "cpu")
    assert plan == {"resize": "cpu"}
    np.testing.assert_allclose(ours["y"], ref["y"], rtol=1e-5, atol=1e-5)


COORDINATES = [("asymmetric", "floor"), ("asymmetric", "round_prefer_ceil"),
               ("half_pixel", "floor"), ("half_pixel", "round_prefer_floor")]  # fmt: skip


@pytest.mark.parametrize(("transform", "nearest"), COORDINATES)
def test_nearest_integer_upsampling_picks_the_reference_pixels_in_every_coordinate_mode(
    transform, nearest
):
    pytest.importorskip("numba")
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="resize", mode="nearest",
                            coordinate_transformation_mode=transform,
                            nearest_mode=nearest)  # fmt: skip
    scales = np.array([1, 1, 2, 3], np.float32)
    model = make_model([node], [("x", F, [1, 2, 4, 5])], [("y", F, None)], {"s": scales})
    x = np.arange(40, dtype=np.float32).reshape(1, 2, 4, 5)
    ours, ref, plan = _both(model, {"x": x}, "cpu")
    assert plan == {"resize": "cpu"}
    np.testing.assert_array_equal(ours["y"], ref["y"])


@pytest.mark.parametrize("engine", ENGINES)
def test_half_precision_is_declined_with_a_reason_and_asymmetric_pads_run(engine):
    w16 = np.ones((1, 1, 3, 3), np.float16)
    conv16 = helper.make_node("Conv", ["x16", "w16"], ["y16"], name="half")
    asym = helper.make_node("Conv", ["x", "w"], ["y"], name="asym", pads=[0, 1, 2, 0])
    model = make_model(
        [conv16, asym],
        [("x16", TensorProto.FLOAT16, [1, 1, 5, 5]), ("x", F, [1, 1, 5, 5])],
        [("y16", TensorProto.FLOAT16, None), ("y", F, None)],
        {"w16": w16, "w": np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)},
    )
    x = np.random.default_rng(3).normal(size=(1, 1, 5, 5)).astype(np.float32)
    feeds = {"x16": x.astype(np.float16), "x": x}
    ours, ref, _ = _both(model, feeds, engine)
    plan = {c.node: c for c in load(model.SerializeToString(), engines=engine).plan}
    reason = {"torch": "float16 input (float32 only)", "cpu": "float32 4-D input only"}
    assert plan["half"].declined == {engine: reason[engine]}
    assert plan["half"].engine == "reference" and plan["asym"].engine == engine
    np.testing.assert_allclose(ours["y"], ref["y"], **TOLERANCE["fp32"])


@pytest.mark.parametrize(
    ("engine", "precision"),
    [pytest.param(e, p, marks=_needs(e)) for e, p in [("torch", "fp32"), ("torch", "bf16"),
                                                       ("cpu", "fp32")]],
)  # fmt: skip
def test_a_style_model_gives_the_reference_picture(tmp_path, engine, precision):
    torch = pytest.importorskip("torch")  # to export the model
    from palmbrush.models import PRESETS, StyleNet
    from palmbrush.train.export import export_net, metadata

    torch.manual_seed(0)
    export_net(StyleNet(PRESETS["nano"]).eval(), tmp_path / "m.onnx", metadata("nano", {}))
    frame = np.random.default_rng(8).integers(0, 256, (1, 97, 131, 3), np.uint8)
    ours = load(tmp_path / "m.onnx", engines=engine, precision=precision)
    assert {c.engine for c in ours.plan if c.op == "FusedConv"} == {engine}
    a = ours.run({"frame": frame})["stylized"].astype(int)
    b = load(tmp_path / "m.onnx", engines="reference").run({"frame": frame})["stylized"]
    diff = np.abs(a - b)
    if precision == "fp32":
        assert diff.max() <= 1
    else:  # the bar for bf16: within 2 levels at 99.9% of pixels
        assert np.mean(diff <= 2) >= 0.999, np.mean(diff <= 2)


def test_two_predictors_keep_their_own_precision(tmp_path):
    """Precision belongs to a predictor, not to the process: bf16 must not leak into fp32."""
    torch = pytest.importorskip("torch")
    from palmbrush.models import PRESETS, StyleNet
    from palmbrush.train.export import export_net, metadata

    torch.manual_seed(1)
    export_net(StyleNet(PRESETS["pico"]).eval(), tmp_path / "m.onnx", metadata("pico", {}))
    frame = np.random.default_rng(9).integers(0, 256, (1, 64, 64, 3), np.uint8)
    fp32 = load(tmp_path / "m.onnx", engines="torch")
    first = fp32.run({"frame": frame})["stylized"]
    bf16 = load(tmp_path / "m.onnx", engines="torch", precision="bf16")
    np.testing.assert_array_equal(fp32.run({"frame": frame})["stylized"], first)
    assert not np.array_equal(bf16.run({"frame": frame})["stylized"], first)


def test_bf16_without_an_engine_that_offers_it_is_an_error_not_a_silent_fp32():
    from palmbrush.runtime import PalmbrushError

    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [2])], [("y", F, None)])
    with pytest.raises(PalmbrushError, match="precision bf16 needs an engine that offers it"):
        load(model.SerializeToString(), engines="reference", precision="bf16")


@pytest.mark.parametrize("mode", ["reflect", "edge", "constant"])
def test_the_cpu_engine_pads_like_the_reference_and_declines_other_axes(mode):
    pytest.importorskip("numba")
    hw = helper.make_node("Pad", ["x", "p"], ["y"], name="hw", mode=mode)
    channels = helper.make_node("Pad", ["x", "q"], ["z"], name="channels", mode=mode)
    inits = {"p": np.array([0, 0, 1, 2, 0, 0, 2, 0]), "q": np.array([0, 1, 0, 0, 0, 1, 0, 0])}
    model = make_model([hw, channels], [("x", F, [1, 2, 3, 4])], [("y", F, None), ("z", F, None)],
                       inits)  # fmt: skip
    x = np.random.default_rng(4).normal(size=(1, 2, 3, 4)).astype(np.float32)
    ours, ref, plan = _both(model, {"x": x}, "cpu")
    assert plan == {"hw": "cpu", "channels": "reference"}
    np.testing.assert_array_equal(ours["y"], ref["y"])


def test_the_cpu_engine_converts_frames_exactly_like_the_reference():
    """FromImage and ToImage (made by the passes) on the cpu engine: bit-identical, including
    round-half-to-even ties and values outside [0, 255]."""
    pytest.importorskip("numba")
    u8 = TensorProto.UINT8
    nodes = [
        helper.make_node("Transpose", ["frame"], ["t"], name="t_in", perm=[0, 3, 1, 2]),
        helper.make_node("Cast", ["t"], ["c"], name="cast", to=F),
        helper.make_node("Div", ["c", "k255"], ["x"], name="div"),
        helper.make_node("Mul", ["x", "k255"], ["back"], name="back"),  # the frame as floats
        helper.make_node("Sub", ["back", "shift"], ["net"], name="net"),
        helper.make_node("Mul", ["net", "half"], ["m"], name="mul"),  # 1.5 k: exact .5 ties
        helper.make_node("Round", ["m"], ["r"], name="round"),
        helper.make_node("Clip", ["r", "zero", "k255"], ["cl"], name="clip"),
        helper.make_node("Transpose", ["cl"], ["tt"], name="t_out", perm=[0, 2, 3, 1]),
        helper.make_node("Cast", ["tt"], ["out"], name="to_uint8", to=u8),
    ]
    inits = {"k255": np.float32(255), "half": np.float32(1.5), "zero": np.float32(0),
             "shift": np.float32(60)}  # fmt: skip
    model = make_model(
        nodes,
        [("frame", u8, [1, "H", "W", 3])],
        [
            ("out", u8, None),
        ],
        inits,
    )
    frame = np.arange(256 * 3 * 5, dtype=np.int64).reshape(1, 20, 48, 4)[..., :3] % 256
    feeds = {"frame": frame.astype(np.uint8)}
    ours, ref, plan = _both(model, feeds, "cpu")
    assert plan["div/image"] == plan["mul/image"] == "cpu"  # the fused FromImage and ToImage
    np.testing.assert_array_equal(ours["out"], ref["out"])
    assert ours["out"].min() == 0 and ours["out"].max() == 255  # both ends clipped
    assert len(np.unique(ours["out"])) > 100


_CACHE_PROBE = """
import sys
import numpy as np
from palmbrush.runtime import load
from palmbrush.runtime.engines._numba import codegen, kernels
load(sys.argv[1], engines="cpu").run({"frame": np.zeros((1, 40, 44, 3), np.uint8)})
used = [*codegen._LOADED.values(), kernels.from_image, kernels.to_image]
stats = [f.stats for f in used]
hits = sum(sum(s.cache_hits.values()) for s in stats)
windows = ["conv_%dx%d_by%d_%s_" % key for key in sorted(codegen._LOADED)]
print(hits, sum(sum(s.cache_misses.values()) for s in stats), *windows)
"""


@pytest.mark.slow
def test_cpu_kernels_are_generated_for_the_model_compiled_once_then_loaded_from_disk(tmp_path):
    pytest.importorskip("numba")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "PALMBRUSH_CACHE": str(tmp_path / "palmbrush")}  # fmt: skip
    command = [sys.executable, "-c", _CACHE_PROBE, str(SAMPLE)]
    runs = [subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            for _ in range(2)]  # fmt: skip
    (hits1, misses1, *windows1), (hits2, misses2, *windows2) = (r.split() for r in runs)
    assert int(misses1) > 0 and int(hits1) == 0  # the first process compiles (and writes the cache)
    assert int(hits2) == int(misses1) and int(misses2) == 0  # the second only loads
    generated = sorted(p.name for p in (tmp_path / "palmbrush" / "kernels").glob("conv_*.py"))
    assert windows1 == windows2 and len(generated) == len(windows1) > 0  # one file per window
    assert all(any(name.startswith(prefix) for name in generated) for prefix in windows1)
    (tmp_path / "a-file").write_text("")  # a cache that cannot be written: a temporary folder
    env["PALMBRUSH_CACHE"] = str(tmp_path / "a-file")
    code = "import logging; logging.basicConfig(); " + _CACHE_PROBE.replace("import sys", "")
    third = subprocess.run([sys.executable, "-c", "import sys\n" + code, str(SAMPLE)], env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert "cannot keep generated kernels in the cache" in third.stderr
    assert third.stdout.split()[2:] == windows1


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("k", [2, 5, 7, 9])
@pytest.mark.parametrize("co", [3, 4, 5])  # an RGB head; pairs; pairs and one left over
@pytest.mark.parametrize("stride", [1, 2])
def test_style_network_kernel_sizes_match_the_reference(engine, k, co, stride):
    """The first and last layers of style networks: wide kernels, few channels, reflect pad."""
    rng = np.random.default_rng(k * 10 + co)
    x = rng.normal(size=(1, 3, 19, 23)).astype(np.float32)
    inits = {"w": rng.normal(size=(co, 3, k, k)).astype(np.float32),
             "b": rng.normal(size=co).astype(np.float32),
             "p": np.array([0, 0, k // 2, k // 2, 0, 0, k // 2, k // 2])}  # fmt: skip
    nodes = [
        helper.make_node("Pad", ["x", "p"], ["xp"], name="pad", mode="reflect"),
        helper.make_node("Conv", ["xp", "w", "b"], ["y"], name="conv", strides=[stride] * 2),
    ]
    model = make_model(nodes, [("x", F, list(x.shape))], [("y", F, None)], inits)
    ours, ref, plan = _both(model, {"x": x}, engine)
    assert plan == {"conv": engine}
    np.testing.assert_allclose(ours["y"], ref["y"], **TOLERANCE["fp32"])


@_needs("cpu")
def test_layout_conversions_between_the_engines_are_exact_copies():
    """Channels-last (the torch engine's output) to planar (the cpu engine's) and back, and a
    gather through tables from either: the same numbers as NumPy's transposes and indexing."""
    from palmbrush.runtime import layout
    from palmbrush.runtime.engines._numba import ops as nb

    x = np.random.default_rng(8).normal(size=(2, 5, 7, 19)).astype(np.float32)
    hwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert layout.is_channels_last(hwc) and not layout.is_channels_last(x)
    np.testing.assert_array_equal(nb.planar(hwc), x)
    np.testing.assert_array_equal(nb.nhwc(x), x.transpose(0, 2, 3, 1))
    rows, cols = np.array([1, 0, -1, 6, 6], np.int64), np.array([18, 0, 3, -1], np.int64)
    want = x[:, :, rows][:, :, :, cols]
    want[:, :, rows < 0] = 0
    want[:, :, :, cols < 0] = 0
    for source in (x, hwc):
        np.testing.assert_array_equal(nb.gather(source, rows, cols), want)


@_needs("cpu")
@pytest.mark.parametrize("k,dilation,width,upsample", [(1, 1, 16, 1), (3, 1, 16, 1),
                                                       (3, 1, 32, 1), (3, 2, 40, 1),
                                                       (5, 1, 53, 1), (3, 1, 37, 2)])  # fmt: skip
def test_register_tiles_match_the_reference_at_their_edges(monkeypatch, k, dilation, width,
                                                           upsample):  # fmt: skip
    """The AVX2 register tiles where they are easiest to get wrong: rows exactly one or two
    tiles wide, 1x1 and dilated windows, leftover channels, and the upsampling phases (which
    start at input row 1), with instance norm; the test says which kernel ran."""
    from palmbrush.runtime.engines._numba import ops as nb

    monkeypatch.setattr(nb, "_REGISTERS", [16])
    ci, co = 5, 6
    if upsample == 2:  # 2x2 phase convolutions of rows `width` wide
        model, wide = _fused_model("edge", "Relu", False, (6, width), 2, ONE), width
        ci = co = 4
    else:
        rng = np.random.default_rng(k * 10 + dilation)
        pad = dilation * (k - 1) // 2
        inits = {"w": rng.normal(size=(co, ci, k, k)).astype(np.float32),
                 "b": rng.normal(size=co).astype(np.float32),
                 "g": rng.uniform(0.5, 1.5, co).astype(np.float32),
                 "t": rng.normal(size=co).astype(np.float32)}  # fmt: skip
        nodes = [
            helper.make_node(
                "Conv",
                ["x", "w", "b"],
                ["c"],
                name="conv",
                pads=[pad] * 4,
                dilations=[dilation] * 2,
            ),
            helper.make_node("InstanceNormalization", ["c", "g", "t"], ["n"], name="norm"),
            helper.make_node("Identity", ["n"], ["y"], name="out"),
        ]
        model = make_model(nodes, [("x", F, [1, ci, 9, width])], [("y", F, None)], inits)
        wide = width
    block, walk = nb.conv_shape(co, 2 if upsample == 2 else k, 2 if upsample == 2 else k,
                                ci=ci, wo=wide)  # fmt: skip
    assert walk.startswith("tile"), (block, walk)
    x = np.random.default_rng(3).normal(size=(1, ci, 6 if upsample == 2 else 9, width))
    ours, ref, plan = _both(model, {"x": x.astype(np.float32)}, "cpu")
    assert plan["conv"] == "cpu"
    np.testing.assert_allclose(ours["y"], ref["y"], **TOLERANCE["fp32"])


@_needs("cpu")
@pytest.mark.parametrize("registers", [16, 32])  # the AVX2 and the AVX-512 kernel families
@pytest.mark.parametrize("ci,co,k,stride", [(8, 5, 3, 1), (16, 16, 3, 2), (9, 4, 3, 1),
                                            (8, 3, 3, 1), (16, 6, 2, 1), (8, 7, 5, 1),
                                            (8, 6, 3, 2), (4, 6, 7, 2), (70, 8, 3, 1)])  # fmt: skip
@pytest.mark.parametrize("width,norm", [(21, False), (53, True)])
def test_every_generated_kernel_family_matches_the_reference(monkeypatch, registers, ci, co, k,
                                                             stride, width, norm):  # fmt: skip
    """Each (block, pass) conv_shape picks, on either register count, whatever this CPU has:
    blocks of four with a leftover channel, pairs, RGB heads, a pass per window or per row,
    register tiles of 16 and 24 columns (rows 53 wide end with an overlapping tile, which
    the instance norm's statistics must count once; 70 x 3 input rows are past TILE_ROWS)."""
    from palmbrush.runtime.engines._numba import ops as nb

    monkeypatch.setattr(nb, "_REGISTERS", [registers])
    rng = np.random.default_rng(ci * 100 + co * 10 + k)
    x = rng.normal(size=(1, ci, 13, width)).astype(np.float32)
    inits = {"w": rng.normal(size=(co, ci, k, k)).astype(np.float32),
             "b": rng.normal(size=co).astype(np.float32),
             "g": rng.uniform(0.5, 1.5, co).astype(np.float32),
             "t": rng.normal(size=co).astype(np.float32),
             "p": np.array([0, 0, 1, 1, 0, 0, 1, 1])}  # fmt: skip
    nodes = [
        helper.make_node("Pad", ["x", "p"], ["xp"], name="pad", mode="reflect"),
        helper.make_node(
            "Conv", ["xp", "w", "b"], ["c" if norm else "y"], name="conv", strides=[stride] * 2
        ),
    ]
    if norm:
        nodes.append(helper.make_node("InstanceNormalization", ["c", "g", "t"], ["y"], name="n"))
    model = make_model(nodes, [("x", F, list(x.shape))], [("y", F, None)], inits)
    ours, ref, plan = _both(model, {"x": x}, "cpu")
    assert plan == {"conv": "cpu"}
    np.testing.assert_allclose(ours["y"], ref["y"], **TOLERANCE["fp32"])
