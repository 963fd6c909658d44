"""Synthetic query-ad relevance benchmark: a fixed catalogue, rule-based ESCI labels and a seeded generator."""

from relevance.synthetic.generator import (
    DEFAULT_SIZES,
    GENERATOR_VERSION,
    SPLITS,
    TIERS,
    Benchmark,
    BenchmarkConfig,
    generate,
    generate_benchmark,
)
from relevance.synthetic.rules import esci_label, violations

__all__ = [
    "DEFAULT_SIZES",
    "GENERATOR_VERSION",
    "SPLITS",
    "TIERS",
    "Benchmark",
    "BenchmarkConfig",
    "esci_label",
    "generate",
    "generate_benchmark",
    "violations",
]
