"""The pieces of a table statement: names, values, select lists, filters, order and embedded
resources, each composed with psycopg.sql and nothing of the request's text (see table_sql)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from psycopg import sql

from app.gateway.errors import GatewayError
from app.gateway.relations import Relation, Relations, Relationship
from app.gateway.table_grammar import (
    Condition,
    Embed,
    Field,
    Logic,
    OrderTerm,
    RelatedOrder,
    SelectItem,
)
from app.gateway.table_request import Page, Scope

_OPERATORS = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "like",
    "ilike": "ilike",
    "match": "~",
    "imatch": "~*",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
}
_FULL_TEXT = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_IS = {
    "null": "null",
    "not_null": "not null",
    "true": "true",
    "false": "false",
    "unknown": "unknown",
}


class Terms:
    """The terms of one relation, as named in one statement (embedded ones have aliases)."""

    def __init__(
        self,
        relation: Relation,
        relations: Relations,
        embedded: dict[tuple[str, ...], Scope] | None = None,
        *,
        alias: str | None = None,
        path: tuple[str, ...] = (),
        numbers: Iterator[int] | None = None,
    ) -> None:
        """`embedded`: the filters, order and page of each embedded resource, by path; `alias`,
        `path`, `numbers`: an embedded resource's own name in the SQL, its path, and the counter
        that keeps every embedded alias of one request distinct."""
        self.relation = relation
        self.relations = relations
        self.embedded = embedded or {}
        self.alias_name = alias or relation.name
        self.path = path
        self.numbers = numbers or itertools.count(1)
        self.table = sql.Identifier(relation.schema, relation.name)
        self.alias = sql.Identifier(self.alias_name)

    # Pieces -----------------------------------------------------------------------------------

    def column(self, name: str) -> sql.Composable:
        if name == "*":
            return sql.SQL("{}.*").format(self.alias)
        return sql.Identifier(self.alias_name, name)

    def field(self, field: Field) -> sql.Composable:
        expression = self.column(field.name)
        if field.path and not self.relation.is_json(field.name):
            # An array or composite column is read as jsonb, as PostgREST reads it.
            expression = sql.SQL("pg_catalog.to_jsonb({})").format(expression)
        for step in field.path:
            operand = sql.Literal(step.index) if step.key is None else sql.Literal(step.key)
            expression = sql.SQL("{}{}{}").format(expression, sql.SQL(step.arrow), operand)
        return expression

    def select_list(self, items: tuple[SelectItem | Embed, ...]) -> sql.Composable:
        if not items:
            return sql.SQL("{}.*").format(self.alias)
        return sql.SQL(", ").join(self.select_item(item) for item in items)

    def select_item(self, item: SelectItem | Embed) -> sql.Composable:
        if isinstance(item, SelectItem) and item.field.name == "*":
            return self.column("*")
        return sql.SQL(", ").join(
            sql.SQL("{} as {}").format(expression, sql.Identifier(name))
            for expression, name in self.named_values(item)
        )

    def named_values(self, item: SelectItem | Embed) -> list[tuple[sql.Composable, str]]:
        """Each value an item selects and the name it answers under."""
        if isinstance(item, Embed):
            if item.spread:
                return self.spread(item)
            return [(self.embedding(item), item.alias or item.name)]
        if item.field.name == "*":
            return [(self.column(c), c) for c in self.relation.columns]
        expression = self.field(item.field)
        if item.cast is not None:
            expression = sql.SQL("cast({} as {})").format(expression, self.cast_type(item.cast))
        return [(expression, item.alias or item.field.output_name())]

    # Embedded resources -----------------------------------------------------------------------

    def embedding(self, embed: Embed) -> sql.Composable:
        """The related rows as JSON, by a correlated subquery: one object (or null) for a
        resource this one points to, an array for the rows that point to this one."""
        relationship, inner = self.embedded_resource(embed)
        rows = inner.embedded_rows(embed, relationship, self)
        # As jsonb, as PostgREST embeds: its text (keys shortest first, spaced) is what clients
        # and CSV fields see.
        if relationship.to_one:
            value = sql.SQL(
                "(select pg_catalog.row_to_json(pgrst_row)::jsonb from ({}) as pgrst_row)"
            )
        else:
            value = sql.SQL(
                "coalesce((select pg_catalog.json_agg(pgrst_row)::jsonb from ({}) as pgrst_row),"
                " '[]')"
            )
        return value.format(rows)

    def spread(self, embed: Embed) -> list[tuple[sql.Composable, str]]:
        """`...owner(name)`: the columns of a resource this one points to, as this one's own."""
        relationship, inner = self.embedded_resource(embed)
        if not relationship.to_one:
            raise GatewayError(
                400,
                "PGRST127",
                "Feature not implemented",
                f"Spreading '{embed.name}', of which there may be many, is not supported by this "
                "gateway",
            )
        where = inner.embedded_conditions(embed, relationship, self)
        return [
            (
                sql.SQL("(select {} from {} as {} where {})").format(
                    value, inner.table, inner.alias, where
                ),
                name,
            )
            for item in (embed.items or (SelectItem(Field("*")),))
            for value, name in inner.named_values(item)
        ]

    def embedded_resource(self, embed: Embed) -> tuple[Relationship, Terms]:
        relationship = self.relationship(embed)
        target = relationship.target
        inner = Terms(
            target,
            self.relations,
            self.embedded,
            alias=f"{target.name}_{next(self.numbers)}",
            path=(*self.path, embed.alias or embed.name),
            numbers=self.numbers,
        )
        return relationship, inner

    def embedded_rows(
        self, embed: Embed, relationship: Relationship, outer: Terms
    ) -> sql.Composable:
        scope = self.embedded.get(self.path) or Scope()
        return sql.SQL(
            "select {items} from {table} as {alias} where {where}{order}{window}"
        ).format(
            items=self.select_list(embed.items),
            table=self.table,
            alias=self.alias,
            where=self.embedded_conditions(embed, relationship, outer),
            order=self.order(tuple(scope.order), embed.items),
            window=page_window(Page(scope.offset or 0, scope.limit)),
        )

    def embedded_conditions(
        self, embed: Embed, relationship: Relationship, outer: Terms
    ) -> sql.Composable:
        """The join to the outer row, the filters on this path, and its own `!inner` ones."""
        scope = self.embedded.get(self.path) or Scope()
        conditions = [self.joined_to(relationship, outer)]
        conditions += [self.condition(c, embed.items) for c in scope.where]
        conditions += self.inner_joins(embed.items)
        return sql.SQL(" and ").join(conditions)

    def joined_to(self, relationship: Relationship, outer: Terms) -> sql.Composable:
        junction, via = relationship.junction, relationship.via
        if junction is not None and via is not None:
            name = f"{junction.name}_{next(self.numbers)}"
            pairs = [
                (name, column, outer.alias_name, referenced)
                for column, referenced in zip(via.columns, via.ref_columns, strict=True)
            ] + [
                (name, column, self.alias_name, referenced)
                for column, referenced in zip(
                    relationship.key.columns, relationship.key.ref_columns, strict=True
                )
            ]
            matches = sql.SQL(" and ").join(
                sql.SQL("{} = {}").format(sql.Identifier(a, b), sql.Identifier(c, d))
                for a, b, c, d in pairs
            )
            return sql.SQL("exists (select from {} as {} where {})").format(
                sql.Identifier(junction.schema, junction.name), sql.Identifier(name), matches
            )
        return sql.SQL(" and ").join(
            sql.SQL("{} = {}").format(
                sql.Identifier(self.alias_name, target_column),
                sql.Identifier(outer.alias_name, origin_column),
            )
            for origin_column, target_column in relationship.join_pairs()
        )

    def inner_joins(self, items: tuple[SelectItem | Embed, ...]) -> list[sql.Composable]:
        """`!inner`: only the rows that have the embedded resource (as it is filtered)."""
        conditions: list[sql.Composable] = []
        for embed in items:
            if isinstance(embed, Embed) and embed.join == "inner":
                relationship, inner = self.embedded_resource(embed)
                rows = inner.embedded_rows(embed, relationship, self)
                conditions.append(sql.SQL("exists ({})").format(rows))
        return conditions

    def embedded_existence(
        self, condition: Condition, items: tuple[SelectItem | Embed, ...]
    ) -> sql.Composable | None:
        """`pets=not.is.null` (or `is.null`): whether the row has the embedded resource, as it
        is filtered; None when the filter names no embedded resource."""
        if condition.operator != "is" or condition.value not in ("null", "not_null"):
            return None
        if condition.field.path:
            return None
        named = condition.field.name
        embed = next(
            (i for i in items if isinstance(i, Embed) and (i.alias or i.name) == named), None
        )
        if embed is None:
            return None
        relationship, inner = self.embedded_resource(embed)
        exists = sql.SQL("exists ({})").format(inner.embedded_rows(embed, relationship, self))
        wanted = (condition.value == "not_null") != condition.negated
        return exists if wanted else sql.SQL("not {}").format(exists)

    def relationship(self, embed: Embed) -> Relationship:
        found = self.relations.relationships(self.relation, embed.name, embed.hint)
        origin, schema = self.relation.name, self.relation.schema
        if not found:
            using = f"' using the hint '{embed.hint}" if embed.hint else ""
            raise GatewayError(
                400,
                "PGRST200",
                f"Could not find a relationship between '{origin}' and '{embed.name}' in the "
                "schema cache",
                f"Searched for a foreign key relationship between '{origin}' and "
                f"'{embed.name}{using}' in the schema '{schema}', but no matches were found.",
            )
        if len(found) > 1:
            options = ", ".join(f"'{embed.name}!{r.key.name}'" for r in found)
            raise GatewayError(
                300,
                "PGRST201",
                "Could not embed because more than one relationship was found for "
                f"'{origin}' and '{embed.name}'",
                [r.described() for r in found],
                f"Try changing '{embed.name}' to one of the following: {options}. Find the "
                "desired relationship in the 'details' key.",
            )
        return found[0]

    def cast_type(self, requested: str) -> sql.Composable:
        found = self.relations.cast_type(requested)
        if found is None:
            raise GatewayError(400, "42704", f'type "{requested}" does not exist')
        return sql.Identifier(*found)

    def where(
        self,
        conditions: tuple[Condition | Logic, ...],
        items: tuple[SelectItem | Embed, ...] = (),
    ) -> sql.Composable:
        """The filters, and for a read the `!inner` embedded resources the rows must have."""
        tests = [self.condition(c, items) for c in conditions] + self.inner_joins(items)
        if not tests:
            return sql.SQL("")
        return sql.SQL(" where {}").format(sql.SQL(" and ").join(tests))

    def condition(
        self, condition: Condition | Logic, items: tuple[SelectItem | Embed, ...] = ()
    ) -> sql.Composable:
        """`items`: what is selected here, whose embedded resources a filter may name."""
        if isinstance(condition, Logic):
            joined = sql.SQL(f" {condition.operator} ").join(
                self.condition(c, items) for c in condition.children
            )
            return sql.SQL("{}({})").format(sql.SQL("not " if condition.negated else ""), joined)
        embedded = self.embedded_existence(condition, items)
        if embedded is not None:
            return embedded
        expression = sql.SQL("{} {}").format(self.field(condition.field), self.test(condition))
        if condition.negated:
            return sql.SQL("not ({})").format(expression)
        return sql.SQL("({})").format(expression)

    def test(self, condition: Condition) -> sql.Composable:
        operator, value = condition.operator, condition.value
        if operator == "in":
            assert isinstance(value, tuple)
            items = () if value == ("",) else value
            return sql.SQL("= any({})").format(sql.Literal(_array_literal(items)))
        assert isinstance(value, str)
        if operator == "is":
            return sql.SQL("is {}").format(sql.SQL(_IS[value]))
        if operator == "isdistinct":
            return sql.SQL("is distinct from {}").format(sql.Literal(value))
        if operator in _FULL_TEXT:
            function = sql.SQL("pg_catalog.{}").format(sql.Identifier(_FULL_TEXT[operator]))
            if condition.language is None:
                return sql.SQL("@@ {}({})").format(function, sql.Literal(value))
            return sql.SQL("@@ {}({}::regconfig, {})").format(
                function, sql.Literal(condition.language), sql.Literal(value)
            )
        if operator in ("like", "ilike"):
            value = value.replace("*", "%")
        operand: sql.Composable = sql.Literal(value)
        if condition.quantifier is not None:
            operand = sql.SQL("{}({})").format(sql.SQL(condition.quantifier), operand)
        return sql.SQL("{} {}").format(sql.SQL(_OPERATORS[operator]), operand)

    def order(
        self,
        terms: tuple[OrderTerm | RelatedOrder, ...],
        items: tuple[SelectItem | Embed, ...] = (),
    ) -> sql.Composable:
        """`items`: what is selected here, whose embedded resources a term may order by."""
        if not terms:
            return sql.SQL("")
        return sql.SQL(" order by {}").format(
            sql.SQL(", ").join(self.order_term(term, items) for term in terms)
        )

    def order_term(
        self, term: OrderTerm | RelatedOrder, items: tuple[SelectItem | Embed, ...]
    ) -> sql.Composable:
        direction = {"asc": " asc", "desc": " desc", None: ""}[term.direction]
        nulls = {"nullsfirst": " nulls first", "nullslast": " nulls last", None: ""}[term.nulls]
        value = self.related_value(term, items) if isinstance(term, RelatedOrder) else None
        expression = value if value is not None else self.field(term.field)
        return sql.SQL("{}{}{}").format(expression, sql.SQL(direction), sql.SQL(nulls))

    def related_value(
        self, term: RelatedOrder, items: tuple[SelectItem | Embed, ...]
    ) -> sql.Composable:
        """The column of the one related row a term orders by (PGRST108 if that resource is not
        embedded, PGRST118 if there may be many)."""
        embed = next(
            (i for i in items if isinstance(i, Embed) and (i.alias or i.name) == term.name), None
        )
        if embed is None:
            raise GatewayError(
                400,
                "PGRST108",
                f"'{term.name}' is not an embedded resource in this request",
                hint=f"Verify that '{term.name}' is included in the 'select' query parameter.",
            )
        relationship, inner = self.embedded_resource(embed)
        if not relationship.to_one:
            raise GatewayError(
                400,
                "PGRST118",
                f"A related order on '{term.name}' is not possible",
                f"'{self.relation.name}' and '{term.name}' do not form a many-to-one or "
                "one-to-one relationship",
            )
        return sql.SQL("(select {} from {} as {} where {})").format(
            inner.field(term.field),
            inner.table,
            inner.alias,
            inner.embedded_conditions(embed, relationship, self),
        )


def page_window(page: Page) -> sql.Composable:
    window = sql.SQL("")
    if page.limit is not None:
        window += sql.SQL(" limit {}").format(sql.Literal(page.limit))
    if page.offset:
        window += sql.SQL(" offset {}").format(sql.Literal(page.offset))
    return window


def _array_literal(values: tuple[str, ...]) -> str:
    """A Postgres array literal of text values, every element quoted and escaped."""
    quoted = ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values)
    return "{" + ",".join(quoted) + "}"
