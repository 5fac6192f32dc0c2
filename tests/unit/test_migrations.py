"""The migrations create exactly the tables of db/tables.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from genyard.db.engine import Database
from genyard.db.migrate import migrate
from genyard.db.tables import JOB_STATUSES, metadata
from postgres_server import Databases


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def _schema(conn: Connection) -> dict[str, Any]:
    """Everything reflection sees, names included (autogenerate skips CHECK constraints)."""
    inspector = sa.inspect(conn)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table),
            "fks": sorted(
                (f["name"], tuple(f["constrained_columns"]), f["referred_table"], str(f["options"]))
                for f in inspector.get_foreign_keys(table)
            ),
            "uniques": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "checks": sorted(
                (c["name"], " ".join(c["sqltext"].split()))
                for c in inspector.get_check_constraints(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
        }
    return schema


async def test_migrated_schema_matches_the_metadata(migrated_db: Database) -> None:
    async with migrated_db.read() as conn:
        assert await conn.run_sync(_diff) == []


async def test_migrated_schema_equals_create_all_names_included(
    migrated_db: Database, databases: Databases, tmp_path: Path
) -> None:
    reference = Database(databases.new().sqlalchemy_url(tmp_path / "reference.db"))
    try:
        async with reference.write() as conn:
            await conn.run_sync(metadata.create_all)
        async with reference.read() as conn:
            expected = await conn.run_sync(_schema)
    finally:
        await reference.dispose()
    async with migrated_db.read() as conn:
        actual = await conn.run_sync(_schema)
    assert set(actual) == set(metadata.tables)
    for table in expected:
        assert actual[table] == expected[table], table
    checks = dict(actual["predictions"]["checks"])
    if migrated_db.is_sqlite:
        assert checks["ck_predictions_status"] == (
            "status IN ('pending', 'processing', 'succeeded', 'failed', 'canceled')"
        )
    else:  # PostgreSQL gives back its own rendering: status = ANY (ARRAY['pending', ...])
        assert all(f"'{status}'" in checks["ck_predictions_status"] for status in JOB_STATUSES)


async def test_migrating_twice_is_a_no_op(migrated_db: Database) -> None:
    await migrate(migrated_db)
    async with migrated_db.read() as conn:
        version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).all()
    assert len(version) == 1
    async with migrated_db.read() as conn:
        assert await conn.run_sync(_diff) == []


async def test_the_status_check_constraint_is_enforced(migrated_db: Database) -> None:
    async with migrated_db.write() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'a', 0)"
        )
        await conn.exec_driver_sql(
            "INSERT INTO users (id, name, account_id, is_admin, tier, created_at) "
            "VALUES ('user_1', 'a', 'acct_1', false, 'free', 0)"
        )
    with pytest.raises(IntegrityError):
        async with migrated_db.write() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO predictions (id, account_id, user_id, model, input, status, progress,"
                " is_public, webhook_events, attempts, created_at) VALUES ('pred_1', 'acct_1',"
                " 'user_1', 'a/b', '{}', 'exploded', 0, false, '', 0, 0)"
            )
