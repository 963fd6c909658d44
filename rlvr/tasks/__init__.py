"""Verifiable tasks small enough to train and evaluate on a CPU, with generators, traces and rewards."""
