-- Argument checks the RPCs share, so that each refusal reads the same way.

create or replace function private.require_between(
    p_value bigint,
    p_low bigint,
    p_high bigint,
    p_function text,
    p_argument text
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_value is null or p_value not between p_low and p_high then
        raise exception '%: % must be % to % (got %)',
            p_function, p_argument, p_low, p_high, coalesce(p_value::text, 'null')
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_between(bigint, bigint, bigint, text, text) is
'Nothing when p_value is between p_low and p_high; else 22023 "p_function: p_argument must be '
'p_low to p_high (got p_value)", null included.';

create or replace function private.require_at_least(
    p_value bigint,
    p_low bigint,
    p_function text,
    p_argument text
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_value is null or p_value < p_low then
        raise exception '%: % must be at least % (got %)',
            p_function, p_argument, p_low, coalesce(p_value::text, 'null')
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_at_least(bigint, bigint, text, text) is
'22023 naming p_argument of p_function unless p_value is at least p_low.';

create or replace function private.require_idempotency_key(p_key text, p_function text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_key is not null and pg_catalog.char_length(p_key) not between 1 and 255 then
        raise exception '%: p_idempotency_key must be 1 to 255 characters', p_function
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_idempotency_key(text, text) is
'22023 naming p_function unless the idempotency key p_key is null or 1 to 255 characters.';

create or replace function private.require_length(
    p_value text,
    p_low integer,
    p_high integer,
    p_function text,
    p_argument text
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_value is null or pg_catalog.char_length(p_value) not between p_low and p_high then
        raise exception '%: % must be % to % characters', p_function, p_argument, p_low, p_high
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_length(text, integer, integer, text, text) is
'Nothing when p_value is p_low to p_high characters long; else 22023 "p_function: p_argument '
'must be p_low to p_high characters", null included.';

create or replace function private.require_json_object(
    p_value jsonb,
    p_function text,
    p_argument text
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if pg_catalog.jsonb_typeof(p_value) is distinct from 'object' then
        raise exception '%: % must be a JSON object', p_function, p_argument
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_json_object(jsonb, text, text) is
'Nothing when p_value is a JSON object; else 22023 "p_function: p_argument must be a JSON '
'object", null included.';

create or replace function private.require_nullable_length(
    p_value text,
    p_low integer,
    p_high integer,
    p_function text,
    p_argument text
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if pg_catalog.char_length(p_value) not between p_low and p_high then
        raise exception '%: % must be null or % to % characters', p_function, p_argument, p_low,
            p_high
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_nullable_length(text, integer, integer, text, text) is
'Nothing when p_value is null or p_low to p_high characters long; else 22023 "p_function: '
'p_argument must be null or p_low to p_high characters".';

create or replace function private.require_identifier(
    p_value text,
    p_function text,
    p_argument text
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
-- One bound for every identifier a caller names itself and we store or compare: worker ids,
-- correlation ids, actor and resource identifiers. Ours are uuids or short names; 200 leaves
-- room for a provider's ids and a hostname with a pid.
begin
    perform private.require_nullable_length(p_value, 1, 200, p_function, p_argument);
end;
$$;
comment on function private.require_identifier(text, text, text) is
'Nothing when p_value is null or 1 to 200 characters; else 22023 "p_function: p_argument must '
'be null or 1 to 200 characters". The bound of worker ids, correlation ids and identifiers.';

create or replace function private.require_json_size(
    p_value jsonb,
    p_max_bytes integer,
    p_function text,
    p_argument text
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
-- Measured as the JSON text a client sends and reads back, not as jsonb's binary form, so the
-- bound means what it says in the README.
declare
    v_bytes integer := pg_catalog.octet_length(p_value::text);
begin
    if v_bytes > p_max_bytes then
        raise exception '%: % must be at most % bytes of JSON (got %)',
            p_function, p_argument, p_max_bytes, v_bytes
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_json_size(jsonb, integer, text, text) is
'Nothing when p_value is null or at most p_max_bytes bytes as JSON text; else 22023 '
'"p_function: p_argument must be at most p_max_bytes bytes of JSON (got n)".';

create or replace function private.require_plausible_time(
    p_value timestamptz,
    p_function text,
    p_argument text
)
returns void
language plpgsql
stable
set search_path = ''
as $$
-- A time a caller asks us to act at. Infinity, year 9999 or year 1 is a bug in the caller, and
-- once stored it breaks every computation that subtracts it (monitoring's ages and latencies).
-- A year either way is wider than any schedule or clock skew we serve.
begin
    if not pg_catalog.isfinite(p_value)
        or p_value not between pg_catalog.now() - interval '1 year'
        and pg_catalog.now() + interval '1 year' then
        raise exception '%: % must be a time within a year of now (got %)',
            p_function, p_argument, p_value
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_plausible_time(timestamptz, text, text) is
'Nothing when p_value is null or a finite time within a year before or after now; else 22023 '
'"p_function: p_argument must be a time within a year of now (got p_value)".';

create or replace function private.require_point(
    p_function text,
    p_prefix text,
    p_lat double precision,
    p_lng double precision
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
-- Doubles, not bigints: require_between would round them. NaN compares above every number in
-- Postgres, so it fails the ranges too, and is named as such.
begin
    if (p_lat between -90 and 90) is not true then
        raise exception '%: %_lat must be a latitude, -90 to 90 (got %)',
            p_function, p_prefix, coalesce(p_lat::text, 'null')
        using errcode = '22023';
    end if;
    if (p_lng between -180 and 180) is not true then
        raise exception '%: %_lng must be a longitude, -180 to 180 (got %)',
            p_function, p_prefix, coalesce(p_lng::text, 'null')
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_point(text, text, double precision, double precision) is
'22023 naming <p_prefix>_lat or <p_prefix>_lng of p_function unless they are a latitude (-90 to '
'90) and a longitude (-180 to 180); null and NaN refused. p_prefix is p for (p_lat, p_lng), '
'p_origin for (p_origin_lat, p_origin_lng).';

create or replace function private.quoted_for_error(p_value text, p_max_length integer)
returns text
language plpgsql
immutable
set search_path = ''
as $$
-- Errors reach logs and clients: a refused value is echoed when it is short enough to help, and
-- only counted when it is not (a 10 MB argument must not become a 10 MB error).
begin
    return case
        when pg_catalog.char_length(p_value) > p_max_length
            then pg_catalog.char_length(p_value) || ' characters'
        else coalesce(pg_catalog.quote_literal(p_value), 'null')
    end;
end;
$$;
comment on function private.quoted_for_error(text, integer) is
'p_value quoted for an error message ("null" when null), or "<n> characters" when it is longer '
'than p_max_length.';
