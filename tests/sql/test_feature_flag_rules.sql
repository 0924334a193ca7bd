-- The feature flag rules (*_feature_flag_rules.sql): MurmurHash3 on known vectors, Unleash's
-- bucketing, every constraint operator with inverted, caseInsensitive and missing fields, and
-- the fault text a flag's CHECK reports. tests/py/test_unleash_rules.py holds the same functions
-- to Unleash's client specification, its SDK and mmh3 on random keys.
begin;
select plan(98);

-- MurmurHash3 x86_32: the vectors mmh3.hash(key, seed, signed=False) gives, one per length
-- modulo 4, multi-byte UTF-8 and the largest seed.
select results_eq(
    $$select private.murmur3_32(v.key, v.seed)
        from (values ('', 0), ('', 1), ('a', 0), ('ab', 0), ('abc', 0), ('abcd', 0),
                     ('hello', 0), ('Hello, world!', 1234), ('中文😀', 0),
                     ('The quick brown fox jumps over the lazy dog', 4294967295))
             as v (key, seed)$$,
    $$values (0::bigint), (1364076727), (1009084850), (2613040991), (3017643002), (1139631978),
             (613153351), (4210478515), (3300022926), (590642366)$$,
    'murmur3_32 gives MurmurHash3 x86_32''s values, unsigned'
);
select is(private.murmur3_32('groupA:user-42'), 3354847643::bigint, 'the seed defaults to 0');
select is(private.murmur3_32(null), null, 'a null key hashes to null');
select is(
    private.unleash_normalized_hash('new_ui', 'user-1'), 48,
    'normalized hash: murmur3_32(group:id) % 100 + 1'
);
select is(private.unleash_normalized_hash('g', 'u', 10000), 8819, 'with another modulus');
select throws_ok(
    $$select private.unleash_normalized_hash('g', 'u', 0)$$, '22023',
    'unleash_normalized_hash: p_modulus must be at least 1 (got 0)',
    'a modulus below 1 is refused'
);
select ok(
    (select bool_and(private.unleash_normalized_hash('g', 'user-' || i) between 1 and 100)
       from generate_series(1, 1000) as i),
    'buckets are 1 to 100'
);

-- One constraint on one context: c(constraint, context) reads shorter below.
create function pg_temp.c(p_constraint jsonb, p_context jsonb default '{}')
returns boolean
language sql
as $$ select private.unleash_constraints_hold(jsonb_build_array(p_constraint), p_context) $$;

-- IN and NOT_IN, standard fields and properties
select ok(pg_temp.c('{"contextName": "userId", "operator": "IN", "values": ["1", "2"]}', '{"userId": "2"}'), 'IN: a listed value');
select ok(not pg_temp.c('{"contextName": "userId", "operator": "IN", "values": ["1", "2"]}', '{"userId": "3"}'), 'IN: an unlisted value');
select ok(pg_temp.c('{"contextName": "userId", "operator": "IN", "values": ["1"]}', '{"properties": {"userId": "1"}}'), 'IN: a standard field missing at the top is read from properties');
select ok(not pg_temp.c('{"contextName": "userId", "operator": "IN", "values": ["1"]}', '{"userId": "2", "properties": {"userId": "1"}}'), 'IN: the top-level field wins over properties');
select ok(pg_temp.c('{"contextName": "country", "operator": "IN", "values": ["rw"]}', '{"properties": {"country": "rw"}}'), 'IN: a custom field is read from properties');
select ok(pg_temp.c('{"contextName": "country", "operator": "IN", "values": ["rw"]}', '{"country": "rw"}'), 'IN: a custom field at the top is read too, as the SDKs do');
select ok(not pg_temp.c('{"contextName": "country", "operator": "IN", "values": ["rw"]}'), 'IN: a missing field is false');
select ok(not pg_temp.c('{"contextName": "country", "operator": "IN", "values": []}', '{"properties": {"country": "rw"}}'), 'IN: an empty list is false');
select ok(not pg_temp.c('{"contextName": "country", "operator": "IN", "values": ["RW"], "caseInsensitive": true}', '{"properties": {"country": "rw"}}'), 'IN: caseInsensitive does not apply');
select ok(pg_temp.c('{"contextName": "country", "operator": "IN", "values": ["rw"], "inverted": true}'), 'IN inverted: a missing field is true');
select ok(pg_temp.c('{"contextName": "environment", "operator": "NOT_IN", "values": ["dev"]}', '{"environment": "prod"}'), 'NOT_IN: an unlisted value');
select ok(not pg_temp.c('{"contextName": "environment", "operator": "NOT_IN", "values": ["dev"]}', '{"environment": "dev"}'), 'NOT_IN: a listed value');
select ok(pg_temp.c('{"contextName": "environment", "operator": "NOT_IN", "values": ["dev"]}'), 'NOT_IN: a missing field is true');
select ok(pg_temp.c('{"contextName": "x", "operator": "NOT_IN", "values": ["dev"]}', '{"properties": {"x": null}}'), 'NOT_IN: a null property is missing');
select ok(not pg_temp.c('{"contextName": "environment", "operator": "NOT_IN", "values": ["dev"], "inverted": true}'), 'NOT_IN inverted: a missing field is false');
select ok(pg_temp.c('{"contextName": "environment", "operator": "NOT_IN", "values": []}', '{"environment": "dev"}'), 'NOT_IN: an empty list is true');
select ok(pg_temp.c('{"contextName": "appName", "operator": "IN", "values": ["web"]}', '{"appName": "web"}'), 'IN on appName');
select ok(pg_temp.c('{"contextName": "sessionId", "operator": "IN", "values": ["s1"]}', '{"sessionId": "s1"}'), 'IN on sessionId');
select ok(pg_temp.c('{"contextName": "remoteAddress", "operator": "IN", "values": ["10.0.0.1"]}', '{"remoteAddress": "10.0.0.1"}'), 'IN on remoteAddress');

-- STR_ operators
select ok(pg_temp.c('{"contextName": "email", "operator": "STR_CONTAINS", "values": ["x", "mail"]}', '{"properties": {"email": "a@mail.rw"}}'), 'STR_CONTAINS: any value');
select ok(not pg_temp.c('{"contextName": "email", "operator": "STR_CONTAINS", "values": ["MAIL"]}', '{"properties": {"email": "a@mail.rw"}}'), 'STR_CONTAINS: case counts');
select ok(pg_temp.c('{"contextName": "email", "operator": "STR_CONTAINS", "values": ["MAIL"], "caseInsensitive": true}', '{"properties": {"email": "a@mail.rw"}}'), 'STR_CONTAINS caseInsensitive');
select ok(pg_temp.c('{"contextName": "email", "operator": "STR_STARTS_WITH", "values": ["a@"]}', '{"properties": {"email": "a@mail.rw"}}'), 'STR_STARTS_WITH');
select ok(not pg_temp.c('{"contextName": "email", "operator": "STR_STARTS_WITH", "values": ["mail"]}', '{"properties": {"email": "a@mail.rw"}}'), 'STR_STARTS_WITH: elsewhere is not a start');
select ok(pg_temp.c('{"contextName": "name", "operator": "STR_STARTS_WITH", "values": ["ÉCOLE"], "caseInsensitive": true}', '{"properties": {"name": "école du nord"}}'), 'STR_STARTS_WITH caseInsensitive beyond ASCII');
select ok(pg_temp.c('{"contextName": "email", "operator": "STR_ENDS_WITH", "values": [".rw"]}', '{"properties": {"email": "a@mail.rw"}}'), 'STR_ENDS_WITH');
select ok(not pg_temp.c('{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["a@mail.rw.longer"]}', '{"properties": {"email": "a@mail.rw"}}'), 'STR_ENDS_WITH: a suffix longer than the value');
select ok(pg_temp.c('{"contextName": "email", "operator": "STR_ENDS_WITH", "values": [".RW"], "caseInsensitive": true}', '{"properties": {"email": "a@mail.rw"}}'), 'STR_ENDS_WITH caseInsensitive');
select ok(not pg_temp.c('{"contextName": "email", "operator": "STR_CONTAINS", "values": [""]}'), 'STR_CONTAINS: a missing field is false');
select ok(pg_temp.c('{"contextName": "email", "operator": "STR_CONTAINS", "values": ["x"], "inverted": true}'), 'STR_CONTAINS inverted: a missing field is true');
select ok(pg_temp.c('{"contextName": "email", "operator": "STR_CONTAINS", "values": ["mail"], "inverted": true}', '{"properties": {"email": "a@b.rw"}}'), 'STR_CONTAINS inverted');
select ok(not pg_temp.c('{"contextName": "email", "operator": "STR_CONTAINS", "values": [], "inverted": true}', '{"properties": {"email": "a@b.rw"}}'), 'STR_CONTAINS without values is false, inverted or not');

-- NUM_ operators
select ok(pg_temp.c('{"contextName": "n", "operator": "NUM_EQ", "value": "12"}', '{"properties": {"n": "12.0"}}'), 'NUM_EQ: 12.0 is 12');
select ok(not pg_temp.c('{"contextName": "n", "operator": "NUM_EQ", "value": "12"}', '{"properties": {"n": "13"}}'), 'NUM_EQ: 13 is not 12');
select ok(pg_temp.c('{"contextName": "n", "operator": "NUM_EQ", "value": "1e3"}', '{"properties": {"n": "1000"}}'), 'NUM_EQ: exponents');
select ok(pg_temp.c('{"contextName": "n", "operator": "NUM_GT", "value": "12"}', '{"properties": {"n": "12.5"}}'), 'NUM_GT');
select ok(not pg_temp.c('{"contextName": "n", "operator": "NUM_GT", "value": "12"}', '{"properties": {"n": "12"}}'), 'NUM_GT: equal is not greater');
select ok(pg_temp.c('{"contextName": "n", "operator": "NUM_GTE", "value": "12"}', '{"properties": {"n": "12"}}'), 'NUM_GTE: equal');
select ok(pg_temp.c('{"contextName": "n", "operator": "NUM_LT", "value": "-1.5"}', '{"properties": {"n": "-2"}}'), 'NUM_LT: negatives');
select ok(pg_temp.c('{"contextName": "n", "operator": "NUM_LTE", "value": "12"}', '{"properties": {"n": "12"}}'), 'NUM_LTE: equal');
select ok(not pg_temp.c('{"contextName": "n", "operator": "NUM_LTE", "value": "12"}', '{"properties": {"n": "13"}}'), 'NUM_LTE: greater');
select ok(not pg_temp.c('{"contextName": "n", "operator": "NUM_LT", "value": "12"}', '{"properties": {"n": "ten"}}'), 'NUM_LT: an unparsable number is false');
select ok(not pg_temp.c('{"contextName": "n", "operator": "NUM_LT", "value": "12"}', '{"properties": {"n": " 1"}}'), 'NUM_LT: spaces make it unparsable');
select ok(not pg_temp.c('{"contextName": "n", "operator": "NUM_LT", "value": "12"}', '{"properties": {"n": "0x1"}}'), 'NUM_LT: hex is unparsable');
select ok(pg_temp.c('{"contextName": "n", "operator": "NUM_GT", "value": "12"}', '{"properties": {"n": "1e400"}}'), 'NUM_GT: beyond a double is infinity, not an error');
select ok(not pg_temp.c('{"contextName": "n", "operator": "NUM_EQ", "value": "12"}'), 'NUM_EQ: a missing field is false');
select ok(pg_temp.c('{"contextName": "n", "operator": "NUM_EQ", "value": "12", "inverted": true}'), 'NUM_EQ inverted: a missing field is true');
select ok(not pg_temp.c('{"contextName": "n", "operator": "NUM_EQ", "value": "twelve", "inverted": true}', '{"properties": {"n": "1"}}'), 'NUM_EQ with a value that is not a number is false, inverted or not');

-- DATE_ operators, currentTime defaulting to now
select ok(pg_temp.c('{"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2022-01-29T13:00:00.000Z"}', '{"currentTime": "2022-01-29T13:00:00.001Z"}'), 'DATE_AFTER');
select ok(not pg_temp.c('{"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2022-01-29T13:00:00.000Z"}', '{"currentTime": "2022-01-29T13:00:00Z"}'), 'DATE_AFTER is exclusive');
select ok(pg_temp.c('{"contextName": "currentTime", "operator": "DATE_BEFORE", "value": "2022-01-22T14:00:00.000+02:00"}', '{"currentTime": "2022-01-22T11:30:00Z"}'), 'DATE_BEFORE respects the offset');
select ok(not pg_temp.c('{"contextName": "currentTime", "operator": "DATE_BEFORE", "value": "2022-01-22T14:00:00.000+02:00"}', '{"currentTime": "2022-01-22T12:30:00Z"}'), 'DATE_BEFORE after the moment');
select ok(pg_temp.c('{"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2020-01-01T00:00:00Z"}'), 'DATE_AFTER: a missing currentTime is now');
select ok(not pg_temp.c('{"contextName": "currentTime", "operator": "DATE_BEFORE", "value": "2020-01-01T00:00:00Z"}'), 'DATE_BEFORE: a missing currentTime is now');
select ok(not pg_temp.c('{"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2020-01-01T00:00:00Z"}', '{"currentTime": "2022-02-30T00:00:00Z"}'), 'DATE_AFTER: a day that does not exist is false');
select ok(not pg_temp.c('{"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2020-01-01T00:00:00Z"}', '{"currentTime": "yesterday"}'), 'DATE_AFTER: an unparsable date is false');
select ok(pg_temp.c('{"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2016-12-31T23:59:59.999Z"}', '{"currentTime": "2016-12-31T23:59:60Z"}'), 'DATE_AFTER: a leap second is after its minute''s last millisecond');
select ok(pg_temp.c('{"contextName": "currentTime", "operator": "DATE_BEFORE", "value": "2017-01-01T00:00:00.000Z"}', '{"currentTime": "2016-12-31T23:59:60Z"}'), 'DATE_BEFORE: and before the next minute');
select ok(pg_temp.c('{"contextName": "signup", "operator": "DATE_BEFORE", "value": "2020-01-01T00:00:00Z"}', '{"properties": {"signup": "2019-12-31 23:59:59+00:00"}}'), 'DATE_BEFORE on a property, RFC 3339 with a space');
select ok(not pg_temp.c('{"contextName": "signup", "operator": "DATE_BEFORE", "value": "2020-01-01T00:00:00Z"}'), 'DATE_BEFORE: a missing property is false');
select ok(pg_temp.c('{"contextName": "signup", "operator": "DATE_BEFORE", "value": "2020-01-01T00:00:00Z", "inverted": true}'), 'DATE_BEFORE inverted: a missing property is true');

-- SEMVER_ operators, pre-release ordering
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_EQ", "value": "1.2.2"}', '{"properties": {"version": "1.2.2+build.5"}}'), 'SEMVER_EQ ignores build metadata');
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_GT", "value": "2.0.0-alpha.1"}', '{"properties": {"version": "2.0.0-beta.1"}}'), 'SEMVER_GT: beta after alpha');
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_GT", "value": "2.0.0-rc"}', '{"properties": {"version": "2.0.0"}}'), 'SEMVER_GT: a release after its pre-release');
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_GT", "value": "2.0.0-alpha"}', '{"properties": {"version": "2.0.0-alpha.1"}}'), 'SEMVER_GT: more identifiers after fewer');
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_LT", "value": "2.0.0-alpha.10"}', '{"properties": {"version": "2.0.0-alpha.9"}}'), 'SEMVER_LT: numeric identifiers by number');
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_LT", "value": "2.0.0-alpha.a"}', '{"properties": {"version": "2.0.0-alpha.1"}}'), 'SEMVER_LT: digits before letters');
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_LT", "value": "1.10.0"}', '{"properties": {"version": "1.9.9"}}'), 'SEMVER_LT: components by number');
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_GTE", "value": "1.2.2"}', '{"properties": {"version": "1.2.2"}}'), 'SEMVER_GTE: equal');
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_LTE", "value": "1.2.2"}', '{"properties": {"version": "1.2.1"}}'), 'SEMVER_LTE: less');
select ok(not pg_temp.c('{"contextName": "version", "operator": "SEMVER_EQ", "value": "2.0.0"}', '{"properties": {"version": "v2.0.0"}}'), 'SEMVER_EQ: v2.0.0 is not a version');
select ok(not pg_temp.c('{"contextName": "version", "operator": "SEMVER_GT", "value": "1.0.0"}', '{"properties": {"version": "01.2.3"}}'), 'SEMVER_GT: a leading zero is not a version');
select ok(not pg_temp.c('{"contextName": "version", "operator": "SEMVER_GT", "value": "1.0.0"}', '{"properties": {"version": "18446744073709551616.0.0"}}'), 'SEMVER_GT: a component beyond u64 is not a version');
select ok(not pg_temp.c('{"contextName": "version", "operator": "SEMVER_GT", "value": "1.0.0"}'), 'SEMVER_GT: a missing field is false');
select ok(pg_temp.c('{"contextName": "version", "operator": "SEMVER_GT", "value": "1.0.0", "inverted": true}'), 'SEMVER_GT inverted: a missing field is true');
select ok(not pg_temp.c('{"contextName": "version", "operator": "SEMVER_EQ", "value": "v2.0.0", "inverted": true}', '{"properties": {"version": "1.0.0"}}'), 'SEMVER_EQ on v2.0.0 is false, inverted or not');

-- Lists of constraints
select ok(private.unleash_constraints_hold('[]', '{}'), 'an empty list holds');
select ok(private.unleash_constraints_hold(null, '{}'), 'a null list holds');
select ok(not private.unleash_constraints_hold('{}', '{}'), 'an object is not a list and does not hold');
select ok(
    private.unleash_constraints_hold(
        '[{"contextName": "environment", "operator": "IN", "values": ["prod"]},
          {"contextName": "userId", "operator": "IN", "values": ["1"]}]',
        '{"environment": "prod", "userId": "1"}'
    ),
    'every constraint holds'
);
select ok(
    not private.unleash_constraints_hold(
        '[{"contextName": "environment", "operator": "IN", "values": ["prod"]},
          {"contextName": "userId", "operator": "IN", "values": ["1"]}]',
        '{"environment": "prod", "userId": "2"}'
    ),
    'one failing constraint fails the list'
);
select ok(not pg_temp.c('{"contextName": "x", "operator": "REGEXP", "values": ["a"], "inverted": true}'), 'an unknown operator is false, inverted or not');

-- The fault function: null for a good list, the first problem otherwise
select is(private.unleash_constraints_fault(null), null, 'fault: null is no fault');
select is(private.unleash_constraints_fault('[]'), null, 'fault: an empty list is none');
select is(
    private.unleash_constraints_fault(
        '[{"contextName": "userId", "operator": "IN", "values": ["1"], "inverted": false,
           "caseInsensitive": false},
          {"contextName": "n", "operator": "NUM_GTE", "value": "1.5e3", "values": []},
          {"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2022-01-22T13:00:00.000+02:00"},
          {"contextName": "version", "operator": "SEMVER_LT", "value": "2.0.0-rc.1+b7"},
          {"contextName": "email", "operator": "STR_ENDS_WITH", "values": [".rw"], "caseInsensitive": true}]'
    ),
    null,
    'fault: a list of well-formed constraints of each kind is none'
);
select results_eq(
    $$select private.unleash_constraints_fault(v.constraints::jsonb)
        from (values
            (1, '{"contextName": "a"}'),
            (2, '[1]'),
            (3, '[{"contextName": "a", "operator": "IN", "values": [], "negate": true}]'),
            (4, '[{"operator": "IN", "values": []}]'),
            (5, '[{"contextName": "", "operator": "IN", "values": []}]'),
            (6, '[{"contextName": "a", "values": []}]'),
            (7, '[{"contextName": "a", "operator": "IN", "values": []}, {"contextName": "a", "operator": "REGEXP", "values": []}]'),
            (8, '[{"contextName": "a", "operator": "IN", "values": [], "inverted": "yes"}]'),
            (9, '[{"contextName": "a", "operator": "IN", "values": [1]}]'),
            (10, '[{"contextName": "a", "operator": "IN", "values": "x"}]'),
            (11, '[{"contextName": "a", "operator": "IN"}]'),
            (12, '[{"contextName": "a", "operator": "STR_CONTAINS", "values": []}]'),
            (13, '[{"contextName": "a", "operator": "NUM_EQ", "values": ["1"]}]'),
            (14, '[{"contextName": "a", "operator": "NUM_EQ", "value": 1}]'),
            (15, '[{"contextName": "a", "operator": "NUM_EQ", "value": "0x10"}]'),
            (16, '[{"contextName": "a", "operator": "DATE_AFTER", "value": "2022-01-22"}]'),
            (17, '[{"contextName": "a", "operator": "DATE_AFTER", "value": "2022-02-30T00:00:00Z"}]'),
            (18, '[{"contextName": "a", "operator": "SEMVER_EQ", "value": "v2.0.0"}]'),
            (19, '[{"contextName": "a\"b", "operator": "IN", "values": ["1"]}]'),
            (20, '[{"contextName": "a", "operator": "IN", "values": ["ok", "1\\"]}]')
        ) as v (n, constraints)
       order by v.n$$,
    $$values
        ('constraints must be a JSON array'),
        ('constraint 1: must be a JSON object'),
        ('constraint 1: unknown field negate'),
        ('constraint 1: contextName must be a string of 1 to 100 characters'),
        ('constraint 1: contextName must be a string of 1 to 100 characters'),
        ('constraint 1: operator must be a string'),
        ('constraint 2: unknown operator REGEXP'),
        ('constraint 1: inverted and caseInsensitive must be true or false'),
        ('constraint 1: values must be an array of at most 1000 strings of at most 1000 characters'),
        ('constraint 1: values must be an array of at most 1000 strings of at most 1000 characters'),
        ('constraint 1: IN needs values, a list'),
        ('constraint 1: STR_CONTAINS needs at least one value'),
        ('constraint 1: NUM_EQ needs value, a string'),
        ('constraint 1: value must be a string of at most 1000 characters'),
        ('constraint 1: value 0x10 is not a number'),
        ('constraint 1: value 2022-01-22 is not a date (2022-01-29T13:00:00.000Z)'),
        ('constraint 1: value 2022-02-30T00:00:00Z is not a date (2022-01-29T13:00:00.000Z)'),
        ('constraint 1: value v2.0.0 is not a semantic version (1.2.3)'),
        ('constraint 1: contextName cannot hold a double quote (Unleash cannot read it)'),
        ('constraint 1: a value cannot end in a backslash (Unleash cannot read it)')$$,
    'fault: each malformed constraint is named with its number and problem'
);
select is(
    private.unleash_constraints_fault(
        (select jsonb_agg('{"contextName": "a", "operator": "IN", "values": []}'::jsonb)
           from generate_series(1, 101))
    ),
    'at most 100 constraints',
    'fault: at most 100 constraints'
);
select is(
    private.unleash_constraints_fault(
        jsonb_build_array(jsonb_build_object(
            'contextName', 'a', 'operator', 'IN', 'values', jsonb_build_array(repeat('x', 1001))
        ))
    ),
    'constraint 1: values must be an array of at most 1000 strings of at most 1000 characters',
    'fault: a value longer than 1000 characters'
);

-- As a table's CHECK: a bad row is refused at insert.
create temporary table flags_probe (
    conditions jsonb check (private.unleash_constraints_fault(conditions) is null)
);
select lives_ok(
    $$insert into flags_probe values ('[{"contextName": "a", "operator": "IN", "values": ["x"]}]')$$,
    'a CHECK on the fault function accepts a good list'
);
select throws_ok(
    $$insert into flags_probe values ('[{"contextName": "a", "operator": "REGEXP", "values": ["x"]}]')$$,
    '23514', null,
    'and refuses an unknown operator at insert'
);
select is(
    (select provolatile::text from pg_catalog.pg_proc
      where oid = 'private.unleash_constraints_fault(jsonb)'::regprocedure),
    'i',
    'the fault function is immutable, as a CHECK needs'
);

select * from finish();
rollback;
