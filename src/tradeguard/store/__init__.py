"""Persistence: SQLAlchemy models, the engine, and the Alembic migration chain."""
