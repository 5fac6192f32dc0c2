"""Storage of state: tables, the engine, repositories and Alembic migrations."""
