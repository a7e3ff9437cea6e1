"""Production-mode fixtures: a fresh database on the local Postgres server per test module."""

import os
import uuid
from contextlib import closing
from collections.abc import Iterator

import psycopg2
import pytest

SERVER = os.environ.get("PLATFORM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def _admin() -> "psycopg2.extensions.connection":
    connection = psycopg2.connect(f"{SERVER}/postgres")
    connection.autocommit = True
    return connection


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A new, empty database (dropped afterwards) as a DAGSTER_POSTGRES_URL."""
    name = f"dagster_test_{uuid.uuid4().hex[:10]}"
    with closing(_admin()) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield f"{SERVER.replace('postgresql://', 'postgresql+psycopg2://')}/{name}"
    with closing(_admin()) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
