"""The bridge side: the client a bridge imports, and the simulated broker built on it."""
