"""Replaying an account's rules over its stored history: the report and the chart the CLI prints."""
