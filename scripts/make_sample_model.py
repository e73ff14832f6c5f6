"""Rebuild src/palmbrush/samples/tiny_stylenet.onnx (deterministic: seeded weights)."""

from __future__ import annotations

import sys

import onnx

from palmbrush.samples import SAMPLE_PATH, stylenet

if __name__ == "__main__":
    onnx.save_model(stylenet(widths=(8, 16), blocks=1, seed=0), SAMPLE_PATH)
    print(f"wrote {SAMPLE_PATH} ({SAMPLE_PATH.stat().st_size:,} bytes)", file=sys.stderr)
