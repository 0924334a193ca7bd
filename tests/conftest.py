"""Fixtures every test shares: the server, a database cloned per test, and pgTAP on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pytest_pgtap.pgtap import Runner

from tests.support.edge import Edge, edge_settings, running_edge
from tests.support.server import TestServer, start_test_server


@pytest.fixture(scope="session")
def server() -> Iterator[TestServer]:
    test_server = start_test_server()
    yield test_server
    test_server.close()


@pytest.fixture
def database(server: TestServer) -> Iterator[str]:
    """A database of this test's own, migrated (cloned from the template)."""
    name = server.clone()
    yield name
    server.drop(name)


@pytest.fixture
def database_url(server: TestServer, database: str) -> str:
    return server.url(database)


# pytest-pgtap runs each tests/sql/test_*.sql file on this connection: one clone per file.
@pytest.fixture
def pgtap_connection(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url) as conn:
        yield conn


@pytest.fixture
def _pgtap_runner(pgtap_connection: psycopg.Connection[Any]) -> Runner:
    return Runner(pgtap_connection)


@pytest.fixture
def edge(server: TestServer, database: str) -> Iterator[Edge]:
    """The edge on a loopback port, serving this test's database."""
    with running_edge(edge_settings(server, database)) as running:
        yield running
