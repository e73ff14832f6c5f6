"""Issue 13's trade-off runs on Te Fare (docs/styles.md, "Flicker, style, content, colour"): 500
steps from the shipped styles' base with one change each. Run from the repository root as it was
run here (../shared is /work/shared; BASE is the base checkpoint scripts/train_styles.py writes):
`python docs/lab/ab-styles-v2/te-fare-tradeoff.py TAG STYLE_WEIGHT STABILITY STYLE_SIZE [TV]`,
e.g. `tf-s3-t300-ss192 3 300 192`; each model was then measured with scripts/measure_styles.py's
measure_pictures (rows in te-fare-tradeoff.jsonl).
"""

import sys
from pathlib import Path

from palmbrush.train.export import export_net, metadata
from palmbrush.train.loop import train
from palmbrush.train.settings import TrainSettings

D = Path("/work/shared/data")
W = Path("/work/exp3")
BASE = Path("/work/styles-v2/base.ckpt")

tag, style_weight, stability, style_size = sys.argv[1], *map(float, sys.argv[2:4]), sys.argv[4]
s = TrainSettings(
    style=D / "styles" / "gauguin_te_fare.jpg",
    content=D / "content",
    exclude=["bsds500/test"],
    out=W / f"{tag}.onnx",
    preset="femto-skip",
    size=128,
    steps=500,
    style_weight=style_weight,
    temporal_weight=stability,
    style_size=int(style_size),
    tv_weight=float(sys.argv[5]) if len(sys.argv) > 5 else 1.0,
    lr_floor=0.1,
    init=BASE,
    preview_every=0,
    loss_net=f"squeezenet:{D}/weights/squeezenet_v1.1_notop_keras_tf.h5",
    checkpoint=W / f"{tag}.ckpt",
)
net, _ = train(s, log=lambda _: None, overwrite=True)
export_net(net, s.out, metadata("femto-skip", s.resolved().to_dict()))
