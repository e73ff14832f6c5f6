"""Training: data, perceptual losses, the training loop, checkpoints and ONNX export."""
