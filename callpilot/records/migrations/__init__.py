"""Alembic migrations of the records database (run by `callpilot db upgrade` and at server start)."""
