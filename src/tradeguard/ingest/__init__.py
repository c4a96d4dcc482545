"""The way in: expected trades from the platform, signed snapshots and acknowledgements from bridges."""
