"""A value Postgres cannot read is the client's fault (400), whichever type refuses it: PostGIS
says XX000 (internal error) of a geometry it cannot parse, which the fuzzer reached through the
table API (`POST /locations` with `"coordinates": ""` was a 500). A real internal error is 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.edge import Edge, edge_after
from tests.support.server import TestServer

FUNCTIONS_SQL = """
create function public.gw_distance_from_origin(p_at extensions.geography)
returns double precision
language sql
stable
as $$ select extensions.st_distance(p_at, 'POINT(0 0)'::extensions.geography) $$;
create function public.gw_internal_error() returns integer
language plpgsql
as $$ begin raise exception 'cache lookup failed' using errcode = 'XX000'; end $$;
"""


@pytest.fixture
def geo_edge(server: TestServer, database: str) -> Iterator[Edge]:
    with edge_after(server, database, FUNCTIONS_SQL) as edge:
        yield edge


def call(edge: Edge, function: str, arguments: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{edge.url}/rest/v1/rpc/{function}",
        headers={"Authorization": f"Bearer {edge.service_role_key}"},
        json=arguments,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "parse error - invalid geometry"),
        ("POINT(1)", "parse error - invalid geometry"),
        ("0101", "WKB structure does not match expected size!"),
    ],
)
def test_a_geometry_postgis_cannot_read_is_400(geo_edge: Edge, value: str, message: str) -> None:
    response = call(geo_edge, "gw_distance_from_origin", {"p_at": value})

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["message"]) == ("XX000", message)


def test_a_geometry_postgis_reads_is_answered(geo_edge: Edge) -> None:
    response = call(geo_edge, "gw_distance_from_origin", {"p_at": "POINT(0 0)"})

    assert (response.status_code, response.json()) == (200, 0)


def test_an_internal_error_of_our_own_is_still_500(geo_edge: Edge) -> None:
    response = call(geo_edge, "gw_internal_error", {})

    assert response.status_code == 500
    assert response.json()["code"] == "XX000"
