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

create or replace function private.unleash_normalized_hash(
    p_group_id text,
    p_identifier text,
    p_modulus integer default 100,
    p_seed bigint default 0
)
returns integer
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
    if p_modulus is null or p_modulus < 1 then
        raise exception 'unleash_normalized_hash: p_modulus must be at least 1 (got %)',
            coalesce(p_modulus::text, 'null')
        using errcode = '22023';
    end if;
    return private.murmur3_32(p_group_id || ':' || p_identifier, p_seed) % p_modulus + 1;
end;
$$;
comment on function private.unleash_normalized_hash(text, text, integer, bigint) is
'Unleash''s normalizedHash: murmur3_32(p_group_id || '':'' || p_identifier, p_seed) % p_modulus '
'+ 1, so 1 to p_modulus; a gradual rollout at n percent is on when it is at most n. Null when '
'either text is null; 22023 for a modulus below 1.';

-- A number as Unleash's engine reads one (Rust's f64 parsing: digits with an optional fraction
-- and exponent, inf and infinity; NaN, never equal to anything, is left unread). Out of a
-- double's range it is infinity or zero, as there, not an error.
create or replace function private.unleash_number(p_text text)
returns double precision
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    parts text [];
    mantissa numeric;
    exponent integer;
    magnitude numeric;
begin
    parts := pg_catalog.regexp_match(
        p_text, '^([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?$'
    );
    if parts is null then
        if p_text ~* '^[+-]?inf(inity)?$' then
            return case when p_text like '-%' then '-Infinity' else 'Infinity' end;
        end if;
        return null;
    end if;
    mantissa := (parts[1] || parts[2])::numeric;
    if mantissa = 0 then
        return 0;
    end if;
    -- Beyond these exponents the result is infinity or zero whatever the digits.
    exponent := case
        when parts[3] is null then 0
        when pg_catalog.length(pg_catalog.ltrim(parts[3], '+-0')) > 5
            then case when parts[3] like '-%' then -100000 else 100000 end
        else parts[3]::integer
    end;
    if exponent > 400 then
        magnitude := 1e309;
    elsif exponent < -400 - pg_catalog.length(parts[2]) then
        magnitude := 0;
    else
        magnitude := pg_catalog.abs(mantissa) * pg_catalog.power(10::numeric, exponent);
    end if;
    if magnitude >= 1.7976931348623158e308 then
        return case when mantissa < 0 then '-Infinity' else 'Infinity' end;
    elsif magnitude < 2.4703282292062328e-324 then
        return 0;
    end if;
    return pg_catalog.sign(mantissa)::double precision * magnitude::double precision;
end;
$$;
comment on function private.unleash_number(text) is
'p_text as a double the way Unleash''s engine parses a number (Rust f64: 12, -1.5, .5, 1e3, '
'inf); null when it is not one (spaces, hex, NaN, empty).';

-- A moment as Unleash's engine reads one: RFC 3339 (T, t or a space between date and time, any
-- fraction of a second, Z or an offset with or without its colon). Built from its fields, so a
-- 30 February is null rather than an error.
create or replace function private.unleash_timestamp(p_text text)
returns timestamptz
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    f text [];
    offset_minutes integer := 0;
begin
    f := pg_catalog.regexp_match(
        p_text,
        '^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]+)?)'
        || '(?:[Zz]|([+-])([0-9]{2}):?([0-9]{2}))$'
    );
    if f is null
        or f[1]::integer < 1
        or f[2]::integer not between 1 and 12
        or f[3]::integer < 1
        or f[4]::integer > 23
        or f[5]::integer > 59
        or f[6]::numeric >= 61
        or f[8]::integer > 23
        or f[9]::integer > 59
    then
        return null;
    end if;
    -- Only now is the month known to exist.
    if f[3]::integer > pg_catalog.date_part(
        'day', pg_catalog.make_date(f[1]::integer, f[2]::integer, 1) + interval '1 month - 1 day'
    ) then
        return null;
    end if;
    -- A leap second (23:59:60) orders after every earlier instant of its minute, as in chrono.
    if f[6]::numeric >= 60 then
        f[6] := '59.999999';
    end if;
    if f[7] is not null then
        offset_minutes := (f[8]::integer * 60 + f[9]::integer) * (f[7] || '1')::integer;
    end if;
    return (
        pg_catalog.make_timestamp(
            f[1]::integer, f[2]::integer, f[3]::integer, f[4]::integer, f[5]::integer,
            f[6]::double precision
        ) at time zone 'UTC'
    ) - pg_catalog.make_interval(mins => offset_minutes);
end;
$$;
comment on function private.unleash_timestamp(text) is
'p_text as a moment the way Unleash''s engine parses one (RFC 3339: 2022-01-29T13:00:00.000Z, '
'an offset such as +02:00); null when it is not one or names a day that does not exist.';

-- Semantic versions as Unleash's engine compares them (semver 2.0.0 precedence, Rust's semver
-- crate): strict syntax (no leading v, no leading zeros), build metadata ignored, a pre-release
-- below its release, pre-release identifiers compared numerically when both are digits, digits
-- below letters, otherwise by their bytes, and a shorter list of equal identifiers first.
create or replace function private.unleash_semver_compare(p_left text, p_right text)
returns integer
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    -- Checked with ~ and taken apart with split_part: regexp_match's captures cost more than
    -- the rest of the comparison.
    pattern constant text :=
        '^(0|[1-9][0-9]{0,19})\.(0|[1-9][0-9]{0,19})\.(0|[1-9][0-9]{0,19})'
        || '(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)'
        || '(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?'
        || '(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$';
    l_release text;
    r_release text;
    l_core numeric [];
    r_core numeric [];
    l_ids text [];
    r_ids text [];
    l_id text;
    r_id text;
begin
    if not coalesce(p_left ~ pattern and p_right ~ pattern, false) then
        return null;
    end if;
    l_release := pg_catalog.split_part(p_left, '+', 1);
    r_release := pg_catalog.split_part(p_right, '+', 1);
    l_core := pg_catalog.string_to_array(pg_catalog.split_part(l_release, '-', 1), '.')::numeric [];
    r_core := pg_catalog.string_to_array(pg_catalog.split_part(r_release, '-', 1), '.')::numeric [];
    -- Major, minor and patch are u64 in Rust's semver crate: a larger one is no version.
    if l_core[1] > 18446744073709551615 or l_core[2] > 18446744073709551615
        or l_core[3] > 18446744073709551615 or r_core[1] > 18446744073709551615
        or r_core[2] > 18446744073709551615 or r_core[3] > 18446744073709551615
    then
        return null;
    end if;
    if l_core <> r_core then
        return case when l_core < r_core then -1 else 1 end;
    end if;
    -- The pre-release is all after the first hyphen (it may hold more hyphens).
    l_ids := pg_catalog.string_to_array(
        pg_catalog.substr(l_release, pg_catalog.strpos(l_release, '-') + 1), '.'
    );
    r_ids := pg_catalog.string_to_array(
        pg_catalog.substr(r_release, pg_catalog.strpos(r_release, '-') + 1), '.'
    );
    if pg_catalog.strpos(l_release, '-') = 0 or pg_catalog.strpos(r_release, '-') = 0 then
        return case
            when pg_catalog.strpos(l_release, '-') = pg_catalog.strpos(r_release, '-') then 0
            when pg_catalog.strpos(l_release, '-') = 0 then 1
            else -1
        end;
    end if;
    for i in 1..least(pg_catalog.cardinality(l_ids), pg_catalog.cardinality(r_ids)) loop
        l_id := l_ids[i];
        r_id := r_ids[i];
        if l_id is distinct from r_id then
            return case
                when l_id ~ '^[0-9]+$' and r_id ~ '^[0-9]+$'
                    then pg_catalog.sign(l_id::numeric - r_id::numeric)::integer
                when l_id ~ '^[0-9]+$' then -1
                when r_id ~ '^[0-9]+$' then 1
                when l_id collate "C" < r_id collate "C" then -1
                else 1
            end;
        end if;
    end loop;
    return pg_catalog.sign(
        pg_catalog.cardinality(l_ids) - pg_catalog.cardinality(r_ids)
    )::integer;
end;
$$;
comment on function private.unleash_semver_compare(text, text) is
'-1, 0 or 1 as version p_left precedes, equals or follows p_right by semver 2.0.0 precedence '
'(build metadata ignored); null when either is not a strict semantic version (v1.2.3, 1.02.3).';

-- Every constraint on one context, as Unleash's engine evaluates them, the first that fails
-- ending it. One function with the operators inline: it runs on every evaluation, and a call
-- costs more than most operators.
--
-- A contextName is read as Unleash's SDKs read it: the field at the top of the context, else the
-- one of that name in properties (Node's resolveContextValue; the Python SDK agrees), so
-- userId, sessionId, remoteAddress, environment, appName and currentTime are found at the top
-- and custom fields in properties. JSON null is absent; a missing currentTime is now.
-- A field the context lacks makes every operator false but NOT_IN (true), before inversion; so
-- does a value that is not a number, date or version. A constraint Unleash could not compile
-- (unknown operator, a value that is not a number, date or version, a version written v1.2.3, a
-- string operator without values) is false whatever its inversion: unleash_constraints_fault
-- keeps such constraints out of the table, and they fail closed if one arrives another way.
-- caseInsensitive applies to the STR_ operators only, as in every Unleash SDK; lower case is
-- Unicode's (ICU), as Rust's. SEMVER_GTE and SEMVER_LTE are not in Unleash's UI but are in its
-- specification (file 14) and its engine, so they are here.
--
-- Numbers, dates and versions in their everyday forms take a fast path (a cast, an integer
-- array); anything else goes through unleash_number, unleash_timestamp, unleash_semver_compare.
create or replace function private.unleash_constraints_hold(p_constraints jsonb, p_context jsonb)
returns boolean
language plpgsql
stable
parallel safe
set search_path = ''
as $$
declare
    c jsonb;
    operator text;
    context_name text;
    values_list jsonb;
    actual text;
    expected text;
    number_expected double precision;
    number_actual double precision;
    time_expected timestamptz;
    time_actual timestamptz;
    version_order integer;
    result boolean;
begin
    if p_constraints is null then
        return true;
    elsif pg_catalog.jsonb_typeof(p_constraints) <> 'array' then
        return false;
    end if;
    -- By index rather than a query over jsonb_array_elements: no executor per call.
    for i in 0..pg_catalog.jsonb_array_length(p_constraints) - 1 loop
        c := p_constraints -> i;
        operator := c ->> 'operator';
        context_name := c ->> 'contextName';
        actual := coalesce(
            case when context_name <> 'properties' then p_context ->> context_name end,
            p_context -> 'properties' ->> context_name
        );

        if operator in ('IN', 'NOT_IN') then
            values_list := c -> 'values';
            if pg_catalog.jsonb_typeof(values_list) is distinct from 'array' then
                values_list := '[]';
            end if;
            if actual is null and context_name = 'currentTime' then
                actual := pg_catalog.to_char(
                    pg_catalog.now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
                );
            end if;
            result := case
                when operator = 'IN' then actual is not null and values_list ? actual
                else actual is null or not values_list ? actual
            end;

        elsif operator in ('STR_CONTAINS', 'STR_STARTS_WITH', 'STR_ENDS_WITH') then
            values_list := c -> 'values';
            -- Unleash's engine cannot compile a string operator without a value.
            if pg_catalog.jsonb_typeof(values_list) is distinct from 'array'
                or pg_catalog.jsonb_array_length(values_list) = 0
            then
                return false;
            end if;
            if actual is null and context_name = 'currentTime' then
                actual := pg_catalog.to_char(
                    pg_catalog.now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
                );
            end if;
            if c -> 'caseInsensitive' = 'true' then
                actual := pg_catalog.lower(actual collate "und-x-icu");
                values_list := pg_catalog.lower(values_list::text collate "und-x-icu")::jsonb;
            end if;
            result := false;
            if actual is not null then
                for j in 0..pg_catalog.jsonb_array_length(values_list) - 1 loop
                    expected := values_list ->> j;
                    result := case operator
                        when 'STR_CONTAINS' then pg_catalog.strpos(actual, expected) > 0
                        when 'STR_STARTS_WITH' then pg_catalog.starts_with(actual, expected)
                        else pg_catalog.length(expected) <= pg_catalog.length(actual)
                            and pg_catalog.right(actual, pg_catalog.length(expected)) = expected
                    end;
                    exit when result;
                end loop;
            end if;

        elsif operator in ('NUM_EQ', 'NUM_GT', 'NUM_GTE', 'NUM_LT', 'NUM_LTE') then
            expected := c ->> 'value';
            if expected ~ '^[+-]?[0-9]{1,15}(\.[0-9]{0,15})?$' then
                number_expected := expected::double precision;
            elsif expected ~ '^[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?$' then
                number_expected := private.unleash_number(expected);
            else
                return false;
            end if;
            if actual ~ '^[+-]?[0-9]{1,15}(\.[0-9]{0,15})?$' then
                number_actual := actual::double precision;
            else
                number_actual := private.unleash_number(actual);
            end if;
            result := coalesce(case operator
                -- Rust's f64 equality as the engine writes it: closer than machine epsilon.
                when 'NUM_EQ' then
                    pg_catalog.abs(number_actual - number_expected) < 2.220446049250313e-16
                when 'NUM_GT' then number_actual > number_expected
                when 'NUM_GTE' then number_actual >= number_expected
                when 'NUM_LT' then number_actual < number_expected
                else number_actual <= number_expected
            end, false);
            -- Postgres orders NaN above every number (infinity minus infinity); Rust does not.
            if pg_catalog.abs(number_actual - number_expected) = 'NaN' then
                result := operator in ('NUM_GTE', 'NUM_LTE') and number_actual = number_expected;
            end if;

        elsif operator in ('DATE_AFTER', 'DATE_BEFORE') then
            expected := c ->> 'value';
            time_expected := null;
            -- Unleash's own form on a day that exists every year (all but 29 February):
            -- Postgres reads it as it is.
            if expected ~ (
                '^[0-9]{4}-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)'
                || '|(0[13578]|1[02])-31)T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{3})?'
                || '(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$'
            ) and expected !~ '^0000' then
                time_expected := expected::timestamptz;
            elsif expected ~ (
                '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?'
                || '(Z|[+-][0-9]{2}:[0-9]{2})$'
            ) then
                time_expected := private.unleash_timestamp(expected);
            end if;
            if time_expected is null then
                return false;
            end if;
            if actual is null and context_name = 'currentTime' then
                time_actual := pg_catalog.now();
            elsif actual ~ (
                '^[0-9]{4}-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)'
                || '|(0[13578]|1[02])-31)T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?'
                || '(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$'
            ) and actual !~ '^0000' then
                time_actual := actual::timestamptz;
            else
                time_actual := private.unleash_timestamp(actual);
            end if;
            result := coalesce(case operator
                when 'DATE_AFTER' then time_actual > time_expected
                else time_actual < time_expected
            end, false);

        elsif operator in ('SEMVER_EQ', 'SEMVER_GT', 'SEMVER_GTE', 'SEMVER_LT', 'SEMVER_LTE') then
            expected := c ->> 'value';
            -- Plain major.minor.patch on both sides orders as an integer array.
            if expected ~ '^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$'
                and actual ~ '^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$'
            then
                version_order := pg_catalog.btarraycmp(
                    pg_catalog.string_to_array(actual, '.')::integer [],
                    pg_catalog.string_to_array(expected, '.')::integer []
                );
            else
                version_order := private.unleash_semver_compare(actual, expected);
                -- Null for an unreadable version: the context's fails, the constraint's
                -- (which Unleash could not compile) fails whatever the inversion.
                if version_order is null and private.unleash_semver_compare(expected, '0.0.0')
                    is null
                then
                    return false;
                end if;
            end if;
            result := coalesce(case operator
                when 'SEMVER_EQ' then version_order = 0
                when 'SEMVER_GT' then version_order > 0
                when 'SEMVER_GTE' then version_order >= 0
                when 'SEMVER_LT' then version_order < 0
                else version_order <= 0
            end, false);

        else
            return false;
        end if;

        if result = coalesce(c -> 'inverted' = 'true', false) then
            return false;
        end if;
    end loop;
    return true;
end;
$$;
comment on function private.unleash_constraints_hold(jsonb, jsonb) is
'True when every Unleash constraint {contextName, operator, values | value, inverted, '
'caseInsensitive} in the array p_constraints holds on the Unleash context p_context (userId, '
'sessionId, remoteAddress, environment, appName, currentTime, properties), as Unleash''s client '
'specification and engine define them; an empty or null array holds, anything but an array '
'does not, and a constraint Unleash could not compile (see unleash_constraints_fault) fails. '
'Stable: a missing currentTime is now().';

-- What the table's CHECK calls: every constraint one Unleash would compile and evaluate, with
-- bounds of our own (at most 100 constraints of at most 1,000 values of at most 1,000
-- characters, contextName 1 to 100 characters) so a flag row stays small.
create or replace function private.unleash_constraints_fault(p_constraints jsonb)
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    c jsonb;
    n integer;
    operator text;
    field text;
    value_text text;
begin
    if p_constraints is null then
        return null;
    elsif pg_catalog.jsonb_typeof(p_constraints) <> 'array' then
        return 'constraints must be a JSON array';
    elsif pg_catalog.jsonb_array_length(p_constraints) > 100 then
        return 'at most 100 constraints';
    end if;
    for i in 0..pg_catalog.jsonb_array_length(p_constraints) - 1 loop
        c := p_constraints -> i;
        n := i + 1;
        if pg_catalog.jsonb_typeof(c) <> 'object' then
            return pg_catalog.format('constraint %s: must be a JSON object', n);
        end if;
        select k.key into field
        from pg_catalog.jsonb_object_keys(c) as k (key)
        where k.key not in (
            'contextName', 'operator', 'values', 'value', 'inverted', 'caseInsensitive'
        )
        order by k.key
        limit 1;
        if field is not null then
            return pg_catalog.format('constraint %s: unknown field %s', n, field);
        end if;
        if pg_catalog.jsonb_typeof(c -> 'contextName') is distinct from 'string'
            or pg_catalog.char_length(c ->> 'contextName') not between 1 and 100
        then
            return pg_catalog.format(
                'constraint %s: contextName must be a string of 1 to 100 characters', n
            );
        end if;
        -- Unleash's engine writes names and values into a rule it then parses, escaping only
        -- the quotes of values: a quote in a name, or a value ending in a backslash, breaks the
        -- rule and the flag is off there whatever the context.
        if pg_catalog.strpos(c ->> 'contextName', '"') > 0 then
            return pg_catalog.format(
                'constraint %s: contextName cannot hold a double quote (Unleash cannot read it)', n
            );
        end if;
        if pg_catalog.jsonb_typeof(c -> 'operator') is distinct from 'string' then
            return pg_catalog.format('constraint %s: operator must be a string', n);
        end if;
        operator := c ->> 'operator';
        if operator not in (
            'IN', 'NOT_IN', 'STR_CONTAINS', 'STR_STARTS_WITH', 'STR_ENDS_WITH', 'NUM_EQ',
            'NUM_GT', 'NUM_GTE', 'NUM_LT', 'NUM_LTE', 'DATE_AFTER', 'DATE_BEFORE', 'SEMVER_EQ',
            'SEMVER_GT', 'SEMVER_GTE', 'SEMVER_LT', 'SEMVER_LTE'
        ) then
            return pg_catalog.format(
                'constraint %s: unknown operator %s', n, pg_catalog.left(operator, 100)
            );
        end if;
        if pg_catalog.jsonb_typeof(c -> 'inverted') not in ('boolean')
            or pg_catalog.jsonb_typeof(c -> 'caseInsensitive') not in ('boolean')
        then
            return pg_catalog.format(
                'constraint %s: inverted and caseInsensitive must be true or false', n
            );
        end if;
        -- Unleash sends both fields, one of them empty: each must have its shape; the
        -- operator says which one counts.
        if c ? 'values' and (
            pg_catalog.jsonb_typeof(c -> 'values') <> 'array'
            or pg_catalog.jsonb_array_length(c -> 'values') > 1000
            or exists (
                select
                from pg_catalog.jsonb_array_elements(c -> 'values') as v (item)
                where pg_catalog.jsonb_typeof(v.item) <> 'string'
                    or pg_catalog.char_length(v.item #>> '{}') > 1000
            )
        ) then
            return pg_catalog.format(
                'constraint %s: values must be an array of at most 1000 strings of at most 1000 '
                'characters',
                n
            );
        end if;
        if c ? 'value' and (
            pg_catalog.jsonb_typeof(c -> 'value') <> 'string'
            or pg_catalog.char_length(c ->> 'value') > 1000
        ) then
            return pg_catalog.format(
                'constraint %s: value must be a string of at most 1000 characters', n
            );
        end if;
        if exists (
            select
            from pg_catalog.jsonb_array_elements_text(c -> 'values') as v (item)
            where pg_catalog.right(v.item, 1) = '\'
        ) then
            return pg_catalog.format(
                'constraint %s: a value cannot end in a backslash (Unleash cannot read it)', n
            );
        end if;
        value_text := c ->> 'value';
        if operator in ('IN', 'NOT_IN', 'STR_CONTAINS', 'STR_STARTS_WITH', 'STR_ENDS_WITH') then
            if not c ? 'values' then
                return pg_catalog.format('constraint %s: %s needs values, a list', n, operator);
            elsif operator like 'STR\_%' and pg_catalog.jsonb_array_length(c -> 'values') = 0 then
                return pg_catalog.format('constraint %s: %s needs at least one value', n, operator);
            end if;
        elsif value_text is null then
            return pg_catalog.format('constraint %s: %s needs value, a string', n, operator);
        elsif operator like 'NUM\_%'
            and value_text !~ '^[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?$'
        then
            return pg_catalog.format('constraint %s: value %s is not a number', n, value_text);
        elsif operator like 'DATE\_%' and (
            value_text !~ (
                '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?'
                || '(Z|[+-][0-9]{2}:[0-9]{2})$'
            )
            or private.unleash_timestamp(value_text) is null
        ) then
            return pg_catalog.format(
                'constraint %s: value %s is not a date (2022-01-29T13:00:00.000Z)', n, value_text
            );
        elsif operator like 'SEMVER\_%'
            and private.unleash_semver_compare(value_text, value_text) is null
        then
            return pg_catalog.format(
                'constraint %s: value %s is not a semantic version (1.2.3)', n, value_text
            );
        end if;
    end loop;
    return null;
end;
$$;
comment on function private.unleash_constraints_fault(jsonb) is
'Null when p_constraints is null or a JSON array of at most 100 Unleash constraints that '
'Unleash would evaluate: known fields, a known operator, values (strings) for IN, NOT_IN and '
'STR_ operators, value as a number, date or semantic version for the others, booleans for '
'inverted and caseInsensitive. Otherwise the first problem, such as "constraint 2: unknown '
'operator REGEXP". For a CHECK constraint.';
