"""Environment backends: the reference packages stepped as a batch, fast re-implementations, adapters."""
