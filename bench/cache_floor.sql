-- The floor under get_cache and set_cache (bench/cache.py): what any RPC doing their work costs,
-- whatever its logic. Each function is called as they are (PL/pgSQL, security definer,
-- `set search_path = ''`) and its body is only the plain statement the bench compares them
-- with: no argument checks, no expiry, no counting. Whatever get_cache or set_cache costs above
-- its floor is their logic; what the floor costs above the plain statement, no RPC can shed.

create function public.bench_floor_get(p_key text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_value jsonb;
begin
    select e.value into v_value from public.cache_entries as e where e.key = p_key;
    return v_value;
end;
$$;

-- The floor and a count, as get_cache counts a hit: nextval of one sequence every client
-- shares, in the statement that reads the entry. A logged sequence writes WAL every 32 values
-- and the transaction that writes it takes an xid, so its commit waits for the flush; an
-- unlogged one (Postgres 15) writes none.
create sequence public.bench_count_logged;
create sequence public.bench_count_unlogged;
-- Made unlogged by a string: sqlfluff parses neither CREATE UNLOGGED SEQUENCE nor SET UNLOGGED.
do $$ begin execute 'alter sequence public.bench_count_unlogged set unlogged'; end $$;

create function public.bench_floor_get_counted(p_key text, p_counter regclass)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_value jsonb;
    v_count bigint;
begin
    select e.value, pg_catalog.nextval(p_counter) into v_value, v_count
    from public.cache_entries as e
    where e.key = p_key;
    return v_value;
end;
$$;

create function public.bench_floor_set(
    p_key text, p_value jsonb, p_ttl_seconds integer, p_cache_type text, p_tags text[]
)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_expires_at timestamptz;
begin
    insert into public.cache_entries as e (key, value, cache_type, tags, expires_at)
    values (
        p_key, p_value, p_cache_type, p_tags,
        pg_catalog.now() + pg_catalog.make_interval(secs => p_ttl_seconds)
    )
    on conflict (key) do update
        set
            value = excluded.value,
            cache_type = excluded.cache_type,
            tags = excluded.tags,
            expires_at = excluded.expires_at,
            updated_at = pg_catalog.now()
    returning e.expires_at into v_expires_at;
    return v_expires_at;
end;
$$;
