"""Engines: one module per engine, each exposing KERNELS and available()."""
