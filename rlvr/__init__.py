"""RL runs with verifiable rewards on top of :mod:`agpo`: tasks, TRL runs from a config, sampling, pass@k evaluation.

Also tiny decoder-only models built from scratch, so every run works offline on a CPU.
"""
