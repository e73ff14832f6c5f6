"""The reference engine's kernels, split by op family; engines/reference.py assembles them."""
