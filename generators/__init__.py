"""Pure numpy task generators, one module per family (no I/O, no torch, no global RNG)."""
