"""Recipe B of issue 13 (docs/styles.md): femto-skip, style 1.5, stability 300; a base on Starry
Night, then 500 steps per painting. Run from the repository root as it was run here:
`python docs/lab/ab-styles-v2/recipe-b.py te-fare san-giorgio scream` (paths below are this
machine's: ../shared is /work/shared).
"""

import sys
from pathlib import Path

from palmbrush.styles import catalogue
from palmbrush.train.export import export_net, metadata
from palmbrush.train.loop import train
from palmbrush.train.settings import TrainSettings

D = Path("/work/shared/data")
W = Path("/work/exp2")


def s(painting, out, steps, init=None):
    return TrainSettings(
        style=D / "styles" / painting,
        content=D / "content",
        exclude=["bsds500/test"],
        out=W / out,
        preset="femto-skip",
        size=128,
        steps=steps,
        style_weight=1.5,
        temporal_weight=300.0,
        style_size=192,
        lr_floor=0.1,
        init=init,
        preview_every=0,
        loss_net=f"squeezenet:{D}/weights/squeezenet_v1.1_notop_keras_tf.h5",
        checkpoint=W / (out[:-5] + ".ckpt"),
    )


base = s("starry_night.jpg", "base.onnx", 800)
if not (W / "base.ckpt").exists():
    train(base, log=lambda _: None, overwrite=True)
    print("base done", flush=True)
for name in sys.argv[1:]:
    st = s(catalogue()[name].image, f"{name}.onnx", 500, W / "base.ckpt")
    net, _ = train(st, log=lambda _: None, overwrite=True)
    export_net(net, st.out, metadata("femto-skip", st.resolved().to_dict()))
    print(name, "done", flush=True)
