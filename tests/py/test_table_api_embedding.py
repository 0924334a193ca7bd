"""Resource embedding through the table API: to one, to many, one to one and many to many along
foreign keys, hints, !inner, embedded filters, order and pages, spreads, related orders, and
PostgREST's errors when a relationship is missing or ambiguous."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.gateway import error_body
from tests.support.server import TestServer
from tests.support.table_api import STRANGER, Api, table_api_stack


@pytest.fixture(scope="module")
def api(server: TestServer) -> Iterator[Api]:
    with table_api_stack(server) as stack:
        yield stack


# Embedded resources ---------------------------------------------------------------------------


def test_embed_the_row_a_key_points_to(api: Api):
    response = api.get(
        "tapi_pets?select=name,owner:tapi_pets_owner(name),carer:carer_id(id,name)&order=id"
    )
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"name": "rex", "owner": {"name": "ann"}, "carer": {"id": 2, "name": "bob"}},
        {"name": "tom", "owner": {"name": "ann"}, "carer": None},
        {"name": "kit", "owner": {"name": "bob"}, "carer": None},
    ]


def test_embed_the_rows_that_point_here_nested(api: Api):
    response = api.get("tapi_owners?select=name,tapi_pets!owner_id(name,tapi_toys(name))&order=id")
    assert response.json() == [
        {
            "name": "ann",
            "tapi_pets": [
                {"name": "rex", "tapi_toys": [{"name": "ball"}, {"name": "bone"}]},
                {"name": "tom", "tapi_toys": []},
            ],
        },
        {"name": "bob", "tapi_pets": [{"name": "kit", "tapi_toys": [{"name": "mouse"}]}]},
        {"name": "cy", "tapi_pets": []},
    ]


def test_embedded_filters_order_and_limit_and_inner(api: Api):
    paged = api.get(
        "tapi_owners?select=name,pets:tapi_pets!owner_id(name)&order=id"
        "&pets.order=name.desc&pets.limit=1&pets.name=neq.rex"
    )
    assert paged.json() == [
        {"name": "ann", "pets": [{"name": "tom"}]},
        {"name": "bob", "pets": [{"name": "kit"}]},
        {"name": "cy", "pets": []},
    ]
    inner = api.get(
        "tapi_owners?select=name,pets:tapi_pets!tapi_pets_owner!inner(name)&pets.name=eq.kit",
        prefer="count=exact",
    )
    assert inner.json() == [{"name": "bob", "pets": [{"name": "kit"}]}]
    assert inner.headers["content-range"] == "0-0/1"
    to_one = api.get("tapi_pets?select=name,o:tapi_pets_owner!inner(name)&o.name=eq.bob&order=id")
    assert to_one.json() == [{"name": "kit", "o": {"name": "bob"}}]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("pets=not.is.null", ["ann", "bob"]),
        ("pets=is.null", ["cy"]),
        ("pets=not.is.null&pets.name=eq.kit", ["bob"]),
        ("or=(pets.is.null,name.eq.ann)", ["ann", "cy"]),
    ],
)
def test_filters_on_whether_an_embedded_resource_exists(
    api: Api, condition: str, expected: list[str]
):
    response = api.get(
        f"tapi_owners?select=name,pets:tapi_pets!owner_id(name)&order=id&{condition}",
        prefer="count=exact",
    )
    assert [row["name"] for row in response.json()] == expected, response.text
    assert response.headers["content-range"].endswith(f"/{len(expected)}")


def test_spread_a_resource_this_one_points_to(api: Api):
    response = api.get(
        "tapi_pets?select=name,...tapi_pets_owner(owner:name),...carer_id(*)&order=id"
    )
    assert response.json() == [
        {"name": "bob", "owner": "ann", "id": 2},
        {"name": None, "owner": "ann", "id": None},
        {"name": None, "owner": "bob", "id": None},
    ]  # the carer's name replaces the pet's, as the same key would in PostgREST's object


def test_order_by_a_column_of_a_resource_this_one_points_to(api: Api):
    response = api.get("tapi_pets?select=name,o:tapi_pets_owner(name)&order=o(name).desc,name")
    assert [row["name"] for row in response.json()] == ["kit", "rex", "tom"]
    nested = api.get(
        "tapi_toys?select=name,tapi_pets(name,tapi_pets_owner(name))&order=tapi_pets(name).desc,id"
    )
    assert [row["name"] for row in nested.json()] == ["ball", "bone", "mouse"]
    many = api.get("tapi_owners?select=name,pets:tapi_pets!owner_id(name)&order=pets(name)")
    assert many.status_code == 400
    assert many.json() == error_body(
        "PGRST118",
        "A related order on 'pets' is not possible",
        "'tapi_owners' and 'pets' do not form a many-to-one or one-to-one relationship",
    )
    unselected = api.get("tapi_pets?select=name&order=tapi_pets_owner(name)")
    assert unselected.json()["code"] == "PGRST108"


def test_embed_many_to_many_through_a_junction_table(api: Api):
    response = api.get("tapi_owners?select=name,tapi_clubs(name)&order=id&tapi_clubs.order=name")
    assert response.json() == [
        {"name": "ann", "tapi_clubs": [{"name": "chess"}, {"name": "rowing"}]},
        {"name": "bob", "tapi_clubs": [{"name": "rowing"}]},
        {"name": "cy", "tapi_clubs": []},
    ]
    members = api.get(
        "tapi_clubs?select=name,tapi_owners!tapi_memberships(name)&id=eq.2"
        "&tapi_owners.order=name.desc"
    )
    assert members.json() == [{"name": "rowing", "tapi_owners": [{"name": "bob"}, {"name": "ann"}]}]


def test_an_embedded_unique_key_is_one_object(api: Api):
    response = api.get("users?select=display_name,user_preferences(language)", role="owner")
    assert response.json() == [{"display_name": "Owner", "user_preferences": {"language": "en-GB"}}]


def test_ambiguous_and_missing_relationships(api: Api):
    ambiguous = api.get("tapi_pets?select=name,tapi_owners(name)")
    assert ambiguous.status_code == 300
    assert ambiguous.json() == {
        "code": "PGRST201",
        "message": "Could not embed because more than one relationship was found for "
        "'tapi_pets' and 'tapi_owners'",
        "details": [
            {
                "cardinality": "many-to-one",
                "embedding": "tapi_pets with tapi_owners",
                "relationship": "tapi_pets_owner using tapi_pets(owner_id) and tapi_owners(id)",
            },
            {
                "cardinality": "many-to-one",
                "embedding": "tapi_pets with tapi_owners",
                "relationship": "tapi_pets_carer using tapi_pets(carer_id) and tapi_owners(id)",
            },
        ],
        "hint": "Try changing 'tapi_owners' to one of the following: "
        "'tapi_owners!tapi_pets_owner', 'tapi_owners!tapi_pets_carer'. Find the desired "
        "relationship in the 'details' key.",
    }
    missing = api.get("tapi_items?select=id,clients(*)")
    assert missing.status_code == 400
    assert missing.json() == error_body(
        "PGRST200",
        "Could not find a relationship between 'tapi_items' and 'clients' in the schema cache",
        "Searched for a foreign key relationship between 'tapi_items' and 'clients' in the "
        "schema 'public', but no matches were found.",
    )


def test_embedded_rows_are_filtered_by_rls(api: Api):
    for role, name in (("owner", "Owner"), ("stranger", "Stranger")):
        response = api.get("transactions?select=amount,users!user_id(display_name)", role=role)
        assert len(response.json()) == 1
        assert response.json()[0]["users"] == {"display_name": name}
    # Each owner's preferences embed their own user; another's stays hidden.
    hidden = api.get(f"user_preferences?select=users(id)&user_id=eq.{STRANGER}", role="owner")
    assert hidden.json() == []


def test_writes_answer_with_embedded_resources(api: Api):
    response = api.send(
        "POST",
        "tapi_pets?select=name,owner:tapi_pets_owner(name)",
        {"id": 20, "name": "new", "owner_id": 3},
        prefer="return=representation,tx=rollback",
    )
    assert (response.status_code, response.json()) == (
        201,
        [{"name": "new", "owner": {"name": "cy"}}],
    )


def test_unknown_column_is_postgres_error(api: Api):
    response = api.get("tapi_items?select=nope")
    assert response.status_code == 400
    assert response.json()["code"] == "42703"
    assert response.json()["message"] == "column tapi_items.nope does not exist"
    unknown_type = api.get("tapi_items?select=id::nosuchtype")
    assert unknown_type.json() == error_body("42704", 'type "nosuchtype" does not exist')


def test_a_read_asked_again_after_a_schema_change_is_composed_again(api: Api):
    api.query(
        "create table public.tapi_a (id integer primary key);"
        "create table public.tapi_b (id integer primary key,"
        " a_id integer references public.tapi_a (id), other_a integer);"
        "grant select on public.tapi_a, public.tapi_b to service_role;"
        "insert into public.tapi_a values (1); insert into public.tapi_b values (1, 1, 1);"
        "notify pgrst, 'reload schema'"
    )
    path = "tapi_b?select=id,tapi_a(id)"
    deadline = time.monotonic() + 10
    while (first := api.get(path)).status_code != 200:
        assert time.monotonic() < deadline, first.text
        time.sleep(0.1)
    assert first.json() == [{"id": 1, "tapi_a": {"id": 1}}]
    assert api.get(path).json() == first.json()  # asked again: the same answer
    api.query(
        "alter table public.tapi_b add foreign key (other_a) references public.tapi_a (id);"
        "notify pgrst, 'reload schema'"
    )
    while (again := api.get(path)).status_code == 200:
        assert time.monotonic() < deadline + 10, again.text
        time.sleep(0.1)
    assert (again.status_code, again.json()["code"]) == (300, "PGRST201")
