"""The benchmark kit behind benchmarks/run, soak, hold and plot (standard library only)."""
