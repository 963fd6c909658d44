"""Studies, comparisons, benchmarks and the journey: they use the library packages; nothing imports them."""
