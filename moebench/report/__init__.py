"""Reports built from result records only."""
