"""Accounts, who may see them, and the guard configuration each one carries."""
