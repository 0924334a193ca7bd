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
