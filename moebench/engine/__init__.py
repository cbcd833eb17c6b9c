"""Engine: cost model and clocks under every method."""
