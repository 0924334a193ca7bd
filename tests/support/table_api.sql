-- Fixture relations of the table API tests (tests/py/test_table_api_http.py): one table with a
-- column of each kind the operators need (text for like and fts, arrays for cs/cd/ov, json
-- paths, nulls for ordering), and hostile names that must only ever be quoted.

create table public.tapi_items (
    id integer primary key,
    name text not null,
    score numeric,
    tags text[] not null default '{}',
    data jsonb not null default '{}',
    note text,
    created_at timestamptz not null default '2026-01-01T00:00:00Z'
);
comment on table public.tapi_items is 'Table API test rows.';
grant select, insert, update, delete on public.tapi_items to anon, authenticated, service_role;

insert into public.tapi_items (id, name, score, tags, data, note) values
(1, 'apple', 1.5, '{red,fruit}', '{"colour": "red", "size": {"cm": 8}, "list": [1, 2]}', 'the quick brown fox'),
(2, 'banana', 2.5, '{yellow,fruit}', '{"colour": "yellow", "size": {"cm": 20}}', 'jumps over the lazy dog'),
(3, 'cherry', null, '{red,fruit,small}', '{"colour": "red"}', null),
(4, 'Durian', 4, '{green}', '{}', 'the smelly fruit'),
(5, 'elder%berry', 5, '{}', '{"colour": "black"}', 'percent sign in the name');

create table public.tapi_keyless (label text, amount integer);
comment on table public.tapi_keyless is 'Table API test rows without a primary key.';
grant select, insert, update, delete on public.tapi_keyless to service_role;

create table public.tapi_defaults (
    id integer primary key,
    label text not null default 'unnamed',
    amount integer default 7
);
comment on table public.tapi_defaults is 'Table API test rows with column defaults.';
grant select, insert, update, delete on public.tapi_defaults to service_role;

create table public."tapi odd ""name""; drop table public.tapi_items; --" (
    id integer primary key,
    "we""ird; col" text,
    "naïve ünïcode" text,
    "50%off" text
);
comment on table public."tapi odd ""name""; drop table public.tapi_items; --" is
'Table API test table whose names are hostile SQL.';
grant select, insert, update, delete
on public."tapi odd ""name""; drop table public.tapi_items; --" to service_role;
insert into public."tapi odd ""name""; drop table public.tapi_items; --"
values (1, 'quoted', 'unicode', 'half');

-- Related tables, for embedding: a pet has an owner, and maybe a carer (a second key to owners).
create table public.tapi_owners (
    id integer primary key,
    name text not null
);
comment on table public.tapi_owners is 'Table API test owners.';
create table public.tapi_pets (
    id integer primary key,
    name text not null,
    owner_id integer not null constraint tapi_pets_owner references public.tapi_owners (id),
    carer_id integer constraint tapi_pets_carer references public.tapi_owners (id)
);
comment on table public.tapi_pets is 'Table API test pets, each with an owner.';
create table public.tapi_toys (
    id integer primary key,
    pet_id integer not null references public.tapi_pets (id),
    name text not null
);
comment on table public.tapi_toys is 'Table API test toys, each of a pet.';
grant select, insert, update, delete on public.tapi_owners, public.tapi_pets, public.tapi_toys
to service_role;
insert into public.tapi_owners values (1, 'ann'), (2, 'bob'), (3, 'cy');
insert into public.tapi_pets values
(1, 'rex', 1, 2), (2, 'tom', 1, null), (3, 'kit', 2, null);
insert into public.tapi_toys values (1, 1, 'ball'), (2, 1, 'bone'), (3, 3, 'mouse');

-- Many to many: owners belong to clubs through memberships (both keys in its primary key).
create table public.tapi_clubs (id integer primary key, name text not null);
comment on table public.tapi_clubs is 'Table API test clubs.';
create table public.tapi_memberships (
    owner_id integer references public.tapi_owners (id),
    club_id integer references public.tapi_clubs (id),
    primary key (owner_id, club_id)
);
comment on table public.tapi_memberships is 'Table API test owners in clubs.';
grant select on public.tapi_clubs, public.tapi_memberships to service_role;
insert into public.tapi_clubs values (1, 'chess'), (2, 'rowing');
insert into public.tapi_memberships values (1, 1), (1, 2), (2, 2);

-- Ranges, for the range operators (sl, sr, nxr, nxl, adj, ov, cs, cd).
create table public.tapi_spans (id integer primary key, span int4range not null);
comment on table public.tapi_spans is 'Table API test integer ranges.';
grant select on public.tapi_spans to service_role;
insert into public.tapi_spans values (1, '[1,5)'), (2, '[5,10)'), (3, '[20,30)');
