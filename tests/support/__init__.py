"""Helpers the test tiers share: builders, local stand-ins for what tradeguard talks to, and ways to run it."""
