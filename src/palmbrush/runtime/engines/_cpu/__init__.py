"""The cpu engine's compiled kernels (Numba); see engines/cpu.py for what they are used for."""
