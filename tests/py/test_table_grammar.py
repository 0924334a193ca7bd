"""PostgREST's query-string grammar for tables (app/gateway/table_grammar.py), without a
database: what each text reads as, and where a text that does not parse went wrong."""

from __future__ import annotations

import pytest

from app.gateway.errors import GatewayError
from app.gateway.table_grammar import (
    Aggregate,
    Condition,
    Embed,
    Field,
    JsonStep,
    Logic,
    OrderTerm,
    RelatedOrder,
    SelectItem,
    parse_columns,
    parse_filter,
    parse_logic,
    parse_order,
    parse_select,
)


def test_select_items():
    assert parse_select("*, id ,label:name,score::numeric,a:data->b->>0::int") == [
        SelectItem(Field("*")),
        SelectItem(Field("id")),
        SelectItem(Field("name"), alias="label"),
        SelectItem(Field("score"), cast="numeric"),
        SelectItem(
            Field("data", (JsonStep("->", "b"), JsonStep("->>", None, 0))), alias="a", cast="int"
        ),
    ]
    assert parse_select("") == []


def test_names_may_be_quoted_dashed_spaced_or_unicode():
    assert parse_select('"a,b:c",first-name,naïve name,"q\\"uote\\\\"') == [
        SelectItem(Field("a,b:c")),
        SelectItem(Field("first-name")),
        SelectItem(Field("naïve name")),
        SelectItem(Field('q"uote\\')),
    ]


def test_json_output_names_are_the_last_key():
    assert Field("data", (JsonStep("->", "a"), JsonStep("->>", "b"))).output_name() == "b"
    assert Field("data", (JsonStep("->", "a"), JsonStep("->", None, 1))).output_name() == "a"
    assert Field("data", (JsonStep("->", None, -1),)).output_name() == "data"


def test_embedded_resources_and_aggregates():
    assert parse_select("id,c:clients!fk!inner(*, t:tags(n)),...owner(name),c:count()") == [
        SelectItem(Field("id")),
        Embed(
            "clients",
            "c",
            "fk",
            "inner",
            items=(SelectItem(Field("*")), Embed("tags", "t", items=(SelectItem(Field("n")),))),
        ),
        Embed("owner", spread=True, items=(SelectItem(Field("name")),)),
        Aggregate(),
    ]
    assert parse_select("score.sum()") == [Aggregate()]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("id", "eq.1", Condition(Field("id"), False, "eq", "1")),
        ("id", 'not.in.(1,"2,3", 4)', Condition(Field("id"), True, "in", ("1", "2,3", " 4"))),
        ("n", "is.NULL", Condition(Field("n"), False, "is", "null")),
        ("n", "isdistinct.x", Condition(Field("n"), False, "isdistinct", "x")),
        ("t", "fts(english).a & b", Condition(Field("t"), False, "fts", "a & b", None, "english")),
        ("t", "like(any).{a*,b*}", Condition(Field("t"), False, "like", "{a*,b*}", "any")),
        ("d->>k", "eq.a.b,c", Condition(Field("d", (JsonStep("->>", "k"),)), False, "eq", "a.b,c")),
        ("tags", "cs.{a,b}", Condition(Field("tags"), False, "cs", "{a,b}")),
    ],
)
def test_filters(key: str, value: str, expected: Condition):
    assert parse_filter(key, value) == ([], expected)


def test_filter_paths_name_embedded_resources():
    assert parse_filter("clients.id", "eq.1")[0] == ["clients"]


def test_logic_trees():
    path, tree = parse_logic("not.or", '(a.eq.1,and(b.in.(1,2),c.like."x,y"),d.cs.{1,2})')
    assert path == []
    assert tree == Logic(
        True,
        "or",
        (
            Condition(Field("a"), False, "eq", "1"),
            Logic(
                False,
                "and",
                (
                    Condition(Field("b"), False, "in", ("1", "2")),
                    Condition(Field("c"), False, "like", "x,y"),
                ),
            ),
            Condition(Field("d"), False, "cs", "{1,2}"),
        ),
    )


def test_order_terms():
    assert parse_order("a,b.desc,c.nullsfirst,d->e.asc.nullslast") == [
        OrderTerm(Field("a"), None, None),
        OrderTerm(Field("b"), "desc", None),
        OrderTerm(Field("c"), None, "nullsfirst"),
        OrderTerm(Field("d", (JsonStep("->", "e"),)), "asc", "nullslast"),
    ]
    assert parse_order("clients(name->x).desc.nullsfirst") == [
        RelatedOrder("clients", Field("name", (JsonStep("->", "x"),)), "desc", "nullsfirst")
    ]


def test_columns():
    assert parse_columns('id, "we,ird",name', "columns") == ["id", "we,ird", "name"]


@pytest.mark.parametrize(
    ("parse", "message", "details"),
    [
        (
            lambda: parse_filter("id", "val"),
            '"failed to parse filter (val)" (line 1, column 1)',
            'unexpected "v" expecting "not" or operator (eq, gt, ...)',
        ),
        (
            lambda: parse_logic("or", "(id.in.1,2,id.eq.3)"),
            '"failed to parse logic tree ((id.in.1,2,id.eq.3))" (line 1, column 10)',
            'unexpected "1" expecting "("',
        ),
        (
            lambda: parse_order("id.asc.smth34"),
            '"failed to parse order (id.asc.smth34)" (line 1, column 8)',
            'unexpected "s" expecting "nullsfirst" or "nullslast"',
        ),
        (
            lambda: parse_select("id,"),
            '"failed to parse select parameter (id,)" (line 1, column 4)',
            "unexpected end of input expecting field name (* or [a..z0..9_$])",
        ),
        (
            lambda: parse_columns("a,,b", "on_conflict"),
            '"failed to parse on_conflict parameter (a,,b)" (line 1, column 3)',
            'unexpected "," expecting field name (* or [a..z0..9_$])',
        ),
    ],
)
def test_parse_errors(parse, message: str, details: str):
    with pytest.raises(GatewayError) as raised:
        parse()
    assert (raised.value.status, raised.value.code) == (400, "PGRST100")
    assert (raised.value.message, raised.value.details) == (message, details)
