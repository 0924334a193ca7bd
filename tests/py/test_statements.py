"""The statement splitter: a `;` splits only where Postgres would end a statement."""

import pytest

from app.db.statements import UnterminatedSQL, split_statements


def texts(sql: str) -> list[str]:
    return [statement.text for statement in split_statements(sql)]


def test_splits_on_semicolons_and_keeps_them():
    assert texts("select 1; select 2;\nselect 3") == ["select 1;", "select 2;", "select 3"]


def test_semicolons_inside_strings_identifiers_and_comments_do_not_split():
    sql = """
    select 'a;b', 'it''s; fine', "odd;name" from t; -- trailing; comment
    /* block; /* nested; */ still comment; */ select 2;
    """
    assert texts(sql) == [
        """select 'a;b', 'it''s; fine', "odd;name" from t;""",
        "-- trailing; comment\n    /* block; /* nested; */ still comment; */ select 2;",
    ]


def test_escape_strings_honour_backslashes():
    assert texts(r"select E'a\';b'; select 2;") == [r"select E'a\';b';", "select 2;"]


def test_dollar_quoted_bodies_keep_their_semicolons():
    sql = """
    create function f() returns int language plpgsql as $body$
    begin
        perform 1; return $$nested; not a tag$$::text::int;
    end;
    $body$;
    select $1;
    """
    statements = texts(sql)
    assert len(statements) == 2
    assert statements[0].startswith("create function f()")
    assert statements[0].endswith("$body$;")
    assert statements[1] == "select $1;"


def test_begin_atomic_bodies_end_at_their_end():
    sql = """
    create function g(x int) returns int language sql
    begin atomic
        select case when x > 0 then 1 else 0 end;
        select 2;
    end;
    select 3;
    """
    statements = texts(sql)
    assert len(statements) == 2
    assert statements[0].rstrip().endswith("end;")
    assert statements[1] == "select 3;"


def test_transaction_begin_is_not_atomic():
    assert texts("begin; select 1; commit;") == ["begin;", "select 1;", "commit;"]


def test_comment_only_tails_and_empty_statements_are_dropped():
    assert texts("select 1;;\n-- the end\n") == ["select 1;"]
    assert texts("-- nothing here\n/* at all */") == []


def test_offsets_and_lines_point_at_the_statement():
    sql = "select 1;\n\n  select 2;\nselect\n3;"
    statements = split_statements(sql)
    assert [(s.line, sql[s.offset : s.offset + 6]) for s in statements] == [
        (1, "select"),
        (3, "select"),
        (4, "select"),
    ]


def test_identifiers_with_dollar_signs_are_not_dollar_quotes():
    assert texts("select a$b$c from t; select 2;") == ["select a$b$c from t;", "select 2;"]


@pytest.mark.parametrize(
    "sql",
    [
        "select 'never closed; select 2;",
        'select "never closed; select 2;',
        "select $x$ never closed; select 2;",
        "/* never closed; select 2;",
        "create function f() returns int language sql begin atomic select 1;",
    ],
)
def test_unterminated_input_is_an_error_with_its_line(sql: str):
    with pytest.raises(UnterminatedSQL):
        split_statements(sql)
