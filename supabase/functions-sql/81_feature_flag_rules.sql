-- Feature flag evaluation rules, as Unleash's clients define them (its client specification,
-- @unleash/client-specification 6.1.0, and the Rust engine its SDKs share), so that a flag moved
-- between Unleash and this database puts every user in the same bucket and reads every
-- constraint the same way. Pure functions: no table is read or written here.

-- MurmurHash3 x86_32 over the key's UTF-8 bytes, unsigned, as Unleash buckets users with it.
-- Arithmetic is on bigint masked to 32 bits: a 32-bit multiply is split into the multiplier's
-- two 16-bit halves so no product passes 2^49. A block is three assignments, some repeating a
-- subexpression, because PL/pgSQL pays per statement far more than per operator.
create or replace function private.murmur3_32(p_key text, p_seed bigint default 0)
returns bigint
language plpgsql
immutable
strict
parallel safe
set search_path = ''
as $$
declare
    bytes bytea := pg_catalog.convert_to(p_key, 'UTF8');
    len integer := pg_catalog.length(bytes);
    body_end integer := len - len % 4;
    h bigint := p_seed & 4294967295;
    w bigint;
    k bigint;
begin
    -- Per 4-byte block: k := rotl32(w * c1, 15) * c2, then h := rotl32(h ^ k, 13) * 5 + n,
    -- with c1 = 0xcc9e2d51 (halves 52382, 11601), c2 = 0x1b873593 (7047, 13715) and
    -- n = 0xe6546b64.
    for i in 0..body_end - 4 by 4 loop
        w := pg_catalog.get_byte(bytes, i)
            | (pg_catalog.get_byte(bytes, i + 1) << 8)
            | (pg_catalog.get_byte(bytes, i + 2) << 16)
            | (pg_catalog.get_byte(bytes, i + 3)::bigint << 24);
        k := ((((w * 11601 + (((w * 52382) & 65535) << 16)) & 4294967295) << 15)
            | (((w * 11601 + (((w * 52382) & 65535) << 16)) & 4294967295) >> 17))
            & 4294967295;
        w := h # ((k * 13715 + (((k * 7047) & 65535) << 16)) & 4294967295);
        h := ((((w << 13) | (w >> 19)) & 4294967295) * 5 + 3864292196) & 4294967295;
    end loop;

    if len > body_end then
        k := pg_catalog.get_byte(bytes, body_end);
        if len - body_end > 1 then
            k := k | (pg_catalog.get_byte(bytes, body_end + 1) << 8);
        end if;
        if len - body_end > 2 then
            k := k | (pg_catalog.get_byte(bytes, body_end + 2) << 16);
        end if;
        k := (k * 11601 + (((k * 52382) & 65535) << 16)) & 4294967295;
        k := ((k << 15) | (k >> 17)) & 4294967295;
        h := h # ((k * 13715 + (((k * 7047) & 65535) << 16)) & 4294967295);
    end if;

    -- fmix32, with c3 = 0x85ebca6b (34283, 51819) and c4 = 0xc2b2ae35 (49842, 44597).
    h := h # len;
    h := h # (h >> 16);
    h := (h * 51819 + (((h * 34283) & 65535) << 16)) & 4294967295;
    h := h # (h >> 13);
    h := (h * 44597 + (((h * 49842) & 65535) << 16)) & 4294967295;
    return h # (h >> 16);
end;
$$;
comment on function private.murmur3_32(text, bigint) is
'MurmurHash3 x86_32 of the UTF-8 bytes of p_key with seed p_seed (taken modulo 2^32), as an '
'unsigned 0 to 2^32-1: what mmh3.hash(key, seed, signed=False) and Unleash''s SDKs compute.';
