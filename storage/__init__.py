"""Durable state: SQLAlchemy models, database set-up, repositories and Alembic migrations."""
