-- Unleash's rules, first cut: MurmurHash3 x86_32, the normalised hash, and the IN and NOT_IN
-- constraints (the other operators refuse).
create or replace function private.murmur3_32(p_key text, p_seed bigint default 0)
returns bigint
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_data bytea := pg_catalog.convert_to(p_key, 'UTF8');
    v_len integer := pg_catalog.length(v_data);
    v_h bigint := p_seed & 4294967295;
    v_k bigint;
    v_i integer := 0;
    v_c1 constant bigint := 3432918353;
    v_c2 constant bigint := 461845907;
    v_tail integer;
begin
    while v_i + 4 <= v_len loop
        v_k := pg_catalog.get_byte(v_data, v_i)::bigint
            | (pg_catalog.get_byte(v_data, v_i + 1)::bigint << 8)
            | (pg_catalog.get_byte(v_data, v_i + 2)::bigint << 16)
            | (pg_catalog.get_byte(v_data, v_i + 3)::bigint << 24);
        v_k := (((v_k & 65535) * v_c1 + ((((v_k >> 16) * v_c1) & 65535) << 16)) & 4294967295);
        v_k := ((v_k << 15) | (v_k >> 17)) & 4294967295;
        v_k := (((v_k & 65535) * v_c2 + ((((v_k >> 16) * v_c2) & 65535) << 16)) & 4294967295);
        v_h := v_h # v_k;
        v_h := ((v_h << 13) | (v_h >> 19)) & 4294967295;
        v_h := (v_h * 5 + 3864292196) & 4294967295;
        v_i := v_i + 4;
    end loop;
    v_tail := v_len - v_i;
    v_k := 0;
    if v_tail = 3 then v_k := v_k # (pg_catalog.get_byte(v_data, v_i + 2)::bigint << 16); end if;
    if v_tail >= 2 then v_k := v_k # (pg_catalog.get_byte(v_data, v_i + 1)::bigint << 8); end if;
    if v_tail >= 1 then
        v_k := v_k # pg_catalog.get_byte(v_data, v_i)::bigint;
        v_k := (((v_k & 65535) * v_c1 + ((((v_k >> 16) * v_c1) & 65535) << 16)) & 4294967295);
        v_k := ((v_k << 15) | (v_k >> 17)) & 4294967295;
        v_k := (((v_k & 65535) * v_c2 + ((((v_k >> 16) * v_c2) & 65535) << 16)) & 4294967295);
        v_h := v_h # v_k;
    end if;
    v_h := v_h # v_len;
    v_h := v_h # (v_h >> 16);
    v_h := (((v_h & 65535) * 2246822507 + ((((v_h >> 16) * 2246822507) & 65535) << 16)) & 4294967295);
    v_h := v_h # (v_h >> 13);
    v_h := (((v_h & 65535) * 3266489909 + ((((v_h >> 16) * 3266489909) & 65535) << 16)) & 4294967295);
    v_h := v_h # (v_h >> 16);
    return v_h;
end;
$$;

create or replace function private.unleash_normalized_hash(
    p_group_id text, p_identifier text, p_modulus integer default 100, p_seed bigint default 0
)
returns integer
language sql
immutable
set search_path = ''
return (private.murmur3_32(p_group_id || ':' || p_identifier, p_seed) % p_modulus + 1)::integer;

create or replace function private.unleash_constraints_hold(p_constraints jsonb, p_context jsonb)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
    v_constraint jsonb;
    v_value text;
    v_holds boolean;
begin
    for v_constraint in
        select c.item from pg_catalog.jsonb_array_elements(coalesce(p_constraints, '[]')) as c (item)
    loop
        v_value := coalesce(
            p_context ->> (v_constraint ->> 'contextName'),
            p_context -> 'properties' ->> (v_constraint ->> 'contextName')
        );
        v_holds := v_value in (
            select v.value
            from pg_catalog.jsonb_array_elements_text(v_constraint -> 'values') as v (value)
        );
        if v_constraint ->> 'operator' = 'NOT_IN' then
            v_holds := not coalesce(v_holds, false);
        end if;
        if coalesce(v_holds, false) = coalesce((v_constraint ->> 'inverted')::boolean, false) then
            return false;
        end if;
    end loop;
    return true;
end;
$$;

create or replace function private.unleash_constraints_fault(p_constraints jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    return (
        select 'constraint ' || x.position || ': unknown operator '
            || coalesce(x.item ->> 'operator', 'null')
        from pg_catalog.jsonb_array_elements(p_constraints) with ordinality as x (item, position)
        where coalesce(x.item ->> 'operator', '') not in ('IN', 'NOT_IN')
        order by x.position
        limit 1
    );
end;
$$;
