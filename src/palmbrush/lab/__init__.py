"""The lab: metrics of style models (ONNX in), sweeps on Optuna, blind A/B judging, reports."""
