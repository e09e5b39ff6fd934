"""Storage: SQLModel tables, repositories, aggregation queries and Alembic migrations."""
