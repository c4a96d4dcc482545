"""Pure domain values and decisions: no framework, no database, no clock, no I/O."""
