-- Feature flags (supabase/functions-sql/*_feature_flags.sql, migration
-- 20261207130100_feature_flags.sql): the table refuses bad rows, is_feature_enabled and
-- evaluate_feature_flags answer with Unleash's semantics for each caller, upsert and delete
-- manage flags, and who got which answer is recorded without a write per repeated answer.
-- Buckets are MurmurHash3 x86_32 of 'group:user' (seed 0) % 100 + 1, computed with mmh3:
-- new_ui: user-1 48, user-2 2, user-4 15, user-6 39, user-8 28, user-10 34, sess-1 94, sess-2 23;
-- checkout: user-2 11, user-6 1, user-9 1, user-10 13.
begin;
select plan(79);

create temp table seen (note text primary key, n bigint, t text);
grant select, insert on pg_temp.seen to anon, authenticated, service_role;

create function pg_temp.on_for(p_key text, p_users text [], p_environment text default 'production')
returns text []
language sql
as $$
    select coalesce(array_agg(u order by u), '{}')
    from unnest(p_users) as u
    where public.is_feature_enabled(p_key, u, p_environment)
$$;

create function pg_temp.users(p_count integer)
returns text []
language sql
as $$ select array_agg('user-' || g order by 'user-' || g) from generate_series(1, p_count) as g $$;

-- The table -------------------------------------------------------------------------------------

select lives_ok(
    $$insert into feature_flags (key, name, description, enabled, rollout_strategy,
        rollout_percentage)
      values ('new_ui', 'New UI Design', 'Gradual rollout of redesigned user interface', true,
        'percentage', 25)$$,
    'the seed''s own example works as written by the table owner'
);
select results_eq(
    $$select environment, conditions, target_users, group_id from public.feature_flags
      where key = 'new_ui'$$,
    $$values ('all'::text, '[]'::jsonb, '{}'::text [], null::text)$$,
    'its row applies to every environment, with no conditions, targets or group'
);
select throws_ok(
    $$insert into public.feature_flags (key, name, rollout_strategy, rollout_percentage)
      values ('too_much', 'x', 'percentage', 120)$$,
    '23514', null, 'a percentage of 120 is refused by the table'
);
select throws_ok(
    $$insert into public.feature_flags (key, name, rollout_strategy)
      values ('nobody', 'x', 'user_list')$$,
    '23514', null, 'a user_list without users is refused by the table'
);
select throws_ok(
    $$insert into public.feature_flags (key, name, conditions)
      values ('bad_op', 'x', '[{"contextName": "appName", "operator": "REGEXP",
        "values": ["x"]}]')$$,
    '23514', null, 'a constraint with an unknown operator is refused by the table'
);
select throws_ok(
    $$insert into public.feature_flags (key, name) values ('New UI', 'x')$$,
    '23514', null, 'a key that is not a lower-case slug is refused by the table'
);
select throws_ok(
    $$insert into public.feature_flags (key, name, environment) values ('x', 'x', 'prod')$$,
    '23514', null, 'an unknown environment is refused by the table'
);

-- Percentage: Unleash's gradual rollout ---------------------------------------------------------

select is(
    pg_temp.on_for('new_ui', pg_temp.users(10)),
    '{user-2,user-4}'::text [],
    'at 25% exactly the users whose bucket is at most 25 are on'
);
select is(
    public.is_feature_enabled('new_ui', 'user-2'),
    public.is_feature_enabled('new_ui', 'user-2'),
    'the same user always gets the same answer'
);
update public.feature_flags set rollout_percentage = 40 where key = 'new_ui';
select is(
    pg_temp.on_for('new_ui', pg_temp.users(10)),
    '{user-10,user-2,user-4,user-6,user-8}'::text [],
    'raising the percentage to 40 only adds users'
);
select ok(
    public.is_feature_enabled('new_ui', null, 'production', '{"sessionId": "sess-2"}')
    and not public.is_feature_enabled('new_ui', null, 'production', '{"sessionId": "sess-1"}'),
    'without a user id the session id is the stickiness'
);
select ok(
    not public.is_feature_enabled('new_ui', null, 'production', '{"appName": "rider"}'),
    'with neither, the flag is off'
);
select ok(
    public.is_feature_enabled('new_ui', 'user-2', 'production', '{"userId": "user-1"}'),
    'p_user_id wins over the context''s userId'
);
update public.feature_flags set group_id = 'checkout', rollout_percentage = 25
where key = 'new_ui';
select is(
    pg_temp.on_for('new_ui', pg_temp.users(10)),
    '{user-10,user-2,user-6,user-9}'::text [],
    'the group id, not the key, buckets the users: flags sharing one share their buckets'
);
update public.feature_flags set rollout_percentage = 0 where key = 'new_ui';
select is(pg_temp.on_for('new_ui', pg_temp.users(10)), '{}'::text [], '0% is on for nobody');
update public.feature_flags set rollout_percentage = 100 where key = 'new_ui';
select is(
    pg_temp.on_for('new_ui', pg_temp.users(10)), pg_temp.users(10), '100% is on for everyone'
);
select ok(
    public.is_feature_enabled('new_ui', null, 'production', '{"appName": "rider"}'),
    '... even without a user or session id, as Unleash''s random stickiness is at 100%'
);

-- The other strategies and the environments -----------------------------------------------------

insert into public.feature_flags (key, name, enabled, rollout_strategy, target_users, environment)
values
('beta', 'Beta', true, 'user_list', '{user-3,user-7}', 'all'),
('everyone', 'Everyone', true, 'all', '{}', 'all'),
('nobody_yet', 'Nobody', true, 'none', '{}', 'all'),
('switched_off', 'Off', false, 'all', '{}', 'all'),
('staged', 'Staged', true, 'all', '{}', 'all'),
('staged', 'Staged', false, 'all', '{}', 'production');
select is(
    pg_temp.on_for('beta', pg_temp.users(10)), '{user-3,user-7}'::text [],
    'user_list is on for the listed users only'
);
select ok(
    public.is_feature_enabled('everyone', 'user-1') and public.is_feature_enabled('everyone'),
    'all is on, with or without a user'
);
select ok(
    not public.is_feature_enabled('nobody_yet', 'user-1')
    and not public.is_feature_enabled('switched_off', 'user-1'),
    'none and a disabled flag are off'
);
select ok(
    not public.is_feature_enabled('staged', 'user-1', 'production')
    and public.is_feature_enabled('staged', 'user-1', 'staging'),
    'the row for the environment asked wins over the row for all of them'
);
insert into pg_temp.seen (note, n)
select 'unknown before', count(*) from public.system_metrics
where metric_name = 'evaluations.unknown_key';
select ok(
    not public.is_feature_enabled('new_iu', 'user-1'),
    'an unknown key is off, not an error'
);
select results_eq(
    $$select count(*) - (select n from pg_temp.seen where note = 'unknown before'),
        max(tags ->> 'key')
      from public.system_metrics where metric_name = 'evaluations.unknown_key'$$,
    $$values (1::bigint, 'new_iu'::text)$$,
    'and it is counted, with its key, so a typo is visible'
);

-- Conditions ------------------------------------------------------------------------------------

insert into public.feature_flags (key, name, enabled, rollout_strategy, conditions)
values (
    'drivers_in_rw', 'Drivers in Rwanda', true, 'condition',
    '[{"contextName": "appName", "operator": "IN", "values": ["driver"]},
      {"contextName": "country", "operator": "IN", "values": ["RW"]}]'
);
select ok(
    public.is_feature_enabled(
        'drivers_in_rw', 'user-1', 'production',
        '{"appName": "driver", "properties": {"country": "RW"}}'
    ),
    'condition: on when every constraint holds (a standard field and a custom property)'
);
select ok(
    not public.is_feature_enabled(
        'drivers_in_rw', 'user-1', 'production',
        '{"appName": "driver", "properties": {"country": "KE"}}'
    ),
    'off when one does not'
);
update public.feature_flags
set conditions = '[{"contextName": "environment", "operator": "IN", "values": ["staging"]}]',
    rollout_strategy = 'all'
where key = 'everyone';
select ok(
    public.is_feature_enabled('everyone', 'user-1', 'staging')
    and not public.is_feature_enabled('everyone', 'user-1', 'production'),
    'any strategy''s conditions must hold; environment falls back to p_environment'
);

-- Bad arguments ---------------------------------------------------------------------------------

select throws_ok(
    $$select public.is_feature_enabled('beta', 'user-1', 'prod')$$,
    '22023',
    'is_feature_enabled: p_environment must be development, staging or production (got ''prod'')',
    'an unknown environment is refused'
);
select throws_ok(
    $$select public.is_feature_enabled('beta', 'user-1', 'production', '[]')$$,
    '22023', 'is_feature_enabled: p_context must be a JSON object',
    'a context that is not an object is refused'
);
select throws_ok(
    $$select public.is_feature_enabled('beta', 'user-1', 'production',
        jsonb_build_object('appName', repeat('x', 16384)))$$,
    '22023', null, 'a context over 16 KB is refused'
);
select throws_ok(
    $$select public.is_feature_enabled('beta', repeat('u', 201))$$,
    '22023', 'is_feature_enabled: p_user_id must be null or 1 to 200 characters',
    'a user id over 200 characters is refused'
);
select throws_ok(
    $$select public.is_feature_enabled('')$$,
    '22023', 'is_feature_enabled: p_flag_key must be 1 to 200 characters',
    'an empty key is refused'
);
select throws_ok(
    $$select public.evaluate_feature_flags('user-1', 'prod')$$,
    '22023', null, 'evaluate_feature_flags: an unknown environment is refused'
);

-- Every flag in one call ------------------------------------------------------------------------

select is(
    public.evaluate_feature_flags('user-3', 'production'),
    jsonb_build_object(
        'beta', true, 'drivers_in_rw', false, 'everyone', false, 'new_ui', true,
        'nobody_yet', false, 'staged', false, 'switched_off', false
    ),
    'evaluate_feature_flags answers every flag of the environment for one user'
);
select is(
    public.evaluate_feature_flags('user-3', 'staging') -> 'staged',
    'true'::jsonb,
    '... each by the row of its environment'
);

-- Who may ask -----------------------------------------------------------------------------------

select lives_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}', format(
        'insert into pg_temp.seen (note, t) values (%L, public.is_feature_enabled(%L, null, %L, %L))',
        'anon session', 'everyone', 'staging', '{"sessionId": "s"}'))$$,
    'anon evaluates a flag that targets no user'
);
select is((select t from pg_temp.seen where note = 'anon session'), 'true', '... and gets it');
select lives_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}', format(
        'insert into pg_temp.seen (note, t) values (%L, public.is_feature_enabled(%L, null, %L, %L))',
        'anon claims a user', 'beta', 'production', '{"userId": "user-3"}'))$$,
    'anon naming a user in its context ...'
);
select is(
    (select t from pg_temp.seen where note = 'anon claims a user'), 'false',
    '... is no user: the context''s userId is dropped'
);
select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}',
        'select public.is_feature_enabled(''beta'', ''user-3'')')$$,
    '42501', 'is_feature_enabled: anon evaluates flags for no user; sign in to pass p_user_id',
    'anon passing p_user_id is refused'
);
update public.feature_flags
set target_users = '{aaaaaaaa-0000-4000-8000-000000000001}'
where key = 'beta';
select lives_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "aaaaaaaa-0000-4000-8000-000000000001"}',
        format('insert into pg_temp.seen (note, t) values (%L, public.is_feature_enabled(%L))',
            'own user', 'beta'))$$,
    'a signed-in user evaluates for themselves (p_user_id defaults to the JWT sub)'
);
select is((select t from pg_temp.seen where note = 'own user'), 'true', '... and is on the list');
select lives_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "aaaaaaaa-0000-4000-8000-000000000001"}',
        format('insert into pg_temp.seen (note, t) values (%L, public.evaluate_feature_flags(%L) ->> %L)',
            'own flags', 'aaaaaaaa-0000-4000-8000-000000000001', 'beta'))$$,
    'a signed-in user gets all their flags, naming themselves'
);
select is((select t from pg_temp.seen where note = 'own flags'), 'true', '... the same answer');
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "aaaaaaaa-0000-4000-8000-000000000002"}',
        'select public.is_feature_enabled(''beta'', ''aaaaaaaa-0000-4000-8000-000000000001'')')$$,
    '42501', 'is_feature_enabled: a user may evaluate flags only for themselves',
    'a stranger cannot evaluate for another user'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "aaaaaaaa-0000-4000-8000-000000000002"}',
        'select public.evaluate_feature_flags(''aaaaaaaa-0000-4000-8000-000000000001'')')$$,
    '42501', 'evaluate_feature_flags: a user may evaluate flags only for themselves',
    '... nor get all their flags'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "aaaaaaaa-0000-4000-8000-000000000001"}',
        'select count(*) from public.feature_flags')$$,
    '42501', 'permission denied for table feature_flags',
    'a signed-in user cannot read the flags (target lists are private)'
);
select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}',
        'select count(*) from public.feature_flag_evaluations')$$,
    '42501', 'permission denied for table feature_flag_evaluations',
    'anon cannot read who got what'
);
select lives_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}',
        'select public.is_feature_enabled(''beta'', ''someone-else'')')$$,
    'service_role evaluates for anyone'
);

-- Who got which answer, since when --------------------------------------------------------------

select results_eq(
    $$select enabled from public.feature_flag_evaluations
      where flag_key = 'new_ui' and environment = 'production' and subject = 'user-2'$$,
    $$values (true)$$,
    'the answer a user got is recorded'
);
insert into pg_temp.seen (note, t)
select 'row before', ctid::text from public.feature_flag_evaluations
where flag_key = 'new_ui' and environment = 'production' and subject = 'user-2';
select ok(public.is_feature_enabled('new_ui', 'user-2'), 'the same answer again ...');
select is(
    (select ctid::text from public.feature_flag_evaluations
     where flag_key = 'new_ui' and environment = 'production' and subject = 'user-2'),
    (select t from pg_temp.seen where note = 'row before'),
    '... writes nothing (the row is the same version)'
);
update public.feature_flags set enabled = false where key = 'new_ui';
select ok(not public.is_feature_enabled('new_ui', 'user-2'), 'a changed answer ...');
select results_eq(
    $$select enabled from public.feature_flag_evaluations
      where flag_key = 'new_ui' and environment = 'production' and subject = 'user-2'$$,
    $$values (false)$$,
    '... is recorded'
);

select is(
    public.feature_flag_details('beta', 'aaaaaaaa-0000-4000-8000-000000000001') - 'environment',
    '{"key": "beta", "found": true, "enabled": true, "reason": "TARGETING_MATCH"}'::jsonb,
    'feature_flag_details gives the answer and OpenFeature''s reason'
);
select is(
    public.feature_flag_details('nope') - 'environment',
    '{"key": "nope", "found": false, "enabled": false, "reason": "ERROR"}'::jsonb,
    'and tells an unknown flag from one that is off'
);
select is(
    public.feature_flag_details('switched_off') ->> 'reason',
    'DISABLED',
    'a disabled flag''s reason is DISABLED'
);
select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}',
        'select public.feature_flag_details(''beta'', ''user-3'')')$$,
    '42501', 'feature_flag_details: anon evaluates flags for no user; sign in to pass p_user_id',
    'feature_flag_details refuses as is_feature_enabled does'
);

-- How many evaluations, and the share on ----------------------------------------------------------

insert into public.feature_flags (key, name, enabled, rollout_strategy, target_users)
values ('counted', 'Counted', true, 'user_list', '{u-on}');
select ok(
    public.is_feature_enabled('counted', 'u-on') and public.is_feature_enabled('counted', 'u-on')
    and not public.is_feature_enabled('counted', 'u-off')
    and not public.is_feature_enabled('counted', 'u-off')
    and not public.is_feature_enabled('counted', 'u-off'),
    'five evaluations of a flag, two on'
);
select ok(private.sample_counters() >= 2, 'the sampler samples every flag''s two counters');
select results_eq(
    $$select replace(s.counter, f.id::text, '<id>'), s.value
        from public.feature_flags as f
        inner join private.counter_samples as s on s.counter like 'feature_flag_' || f.id || '_%'
       where f.key = 'counted'
       order by 1$$,
    $$values ('feature_flag_<id>_evaluations', 5::bigint),
             ('feature_flag_<id>_evaluations_on', 2::bigint)$$,
    'the sample holds the evaluations and how many were on, with no row written per evaluation'
);
select results_eq(
    $$select evaluations_last_hour, share_on_last_hour, evaluations_last_day
      from monitoring.feature_flag_overview where key = 'counted'$$,
    $$values (5::bigint, 0.4::numeric, 5::bigint)$$,
    'monitoring.feature_flag_overview: evaluations and share on over the last hour and day'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select count(*) from monitoring.feature_flag_overview')$$,
    'the analyst reads the overview (the counters through their definer function)'
);
select results_eq(
    $$select evaluations, enabled, share_on from monitoring.feature_flag_evaluations_by_hour
      where flag_key = 'counted'$$,
    $$values (5::numeric, 2::numeric, 0.4::numeric)$$,
    'monitoring.feature_flag_evaluations_by_hour: per flag and hour'
);
create temp table counted_flag as select id from public.feature_flags where key = 'counted';
delete from public.feature_flags where key = 'counted';
select is_empty(
    $$select c.relname from pg_catalog.pg_class as c, counted_flag as f
       where c.relnamespace = 'counters'::regnamespace
         and c.relname::text like 'feature_flag_' || f.id || '\_%'
      union all
      select s.counter from private.counter_samples as s, counted_flag as f
       where s.counter like 'feature_flag_' || f.id || '\_%'$$,
    'a deleted flag''s counters go with it, and their samples'
);
insert into public.feature_flags (key, name, enabled) values ('counted', 'Counted again', true);
select results_eq(
    $$select evaluations_last_hour, evaluations_last_day from monitoring.feature_flag_overview
       where key = 'counted'$$,
    $$values (0::bigint, 0::bigint)$$,
    'a flag made again counts from zero'
);

-- Management ------------------------------------------------------------------------------------

select is(
    public.upsert_feature_flag(
        'dark_mode', 'Dark mode', true, 'percentage', 'production', 30, '{}',
        '[{"contextName": "appName", "operator": "IN", "values": ["rider"]}]'
    ) - array['id', 'created_at', 'updated_at'],
    '{"key": "dark_mode", "name": "Dark mode", "enabled": true, "group_id": null,
      "conditions": [{"values": ["rider"], "operator": "IN", "contextName": "appName"}],
      "description": null, "environment": "production", "target_users": [],
      "rollout_strategy": "percentage", "rollout_percentage": 30}'::jsonb,
    'upsert_feature_flag creates a flag and returns its row'
);
select is(
    public.upsert_feature_flag('dark_mode', 'Dark mode', true, 'all', 'production')
    ->> 'rollout_strategy',
    'all',
    'and replaces it'
);
select results_eq(
    $$select event_type, payload ->> 'key', payload ->> 'operation' from public.outbox_events
      where aggregate_type = 'feature_flag' and aggregate_id = 'dark_mode:production'
      order by id$$,
    $$values ('feature_flag.changed'::text, 'dark_mode'::text, 'insert'::text),
             ('feature_flag.changed', 'dark_mode', 'update')$$,
    'each change emits feature_flag.changed'
);
select is(
    (select count(*) from public.system_audit_logs where resource_type = 'public.feature_flags'
       and resource_id = (select id::text from public.feature_flags where key = 'dark_mode')),
    2::bigint,
    'and is audited'
);
select throws_ok(
    $$select public.upsert_feature_flag('Dark Mode', 'x', true)$$,
    '22023', null, 'upsert: a key that is not a slug is refused'
);
select throws_ok(
    $$select public.upsert_feature_flag('x', '', true)$$,
    '22023', 'upsert_feature_flag: p_name must be 1 to 200 characters', 'upsert: an empty name'
);
select throws_ok(
    $$select public.upsert_feature_flag('x', 'x', true, 'random')$$,
    '22023', null, 'upsert: an unknown strategy'
);
select throws_ok(
    $$select public.upsert_feature_flag('x', 'x', true, 'percentage', 'all', 101)$$,
    '22023', 'upsert_feature_flag: p_rollout_percentage must be 0 to 100 (got 101)',
    'upsert: a percentage over 100'
);
select throws_ok(
    $$select public.upsert_feature_flag('x', 'x', true, 'user_list')$$,
    '22023', 'upsert_feature_flag: a user_list flag needs p_target_users',
    'upsert: a user_list without users'
);
select throws_ok(
    $$select public.upsert_feature_flag('x', 'x', true, 'all', 'all', 0, '{}',
        '[{"contextName": "appName", "operator": "REGEXP", "values": ["x"]}]')$$,
    '22023', null, 'upsert: a constraint with an unknown operator'
);
select throws_ok(
    $$select public.delete_feature_flag('dark_mode', 'staging')$$,
    'PT404', 'delete_feature_flag: no flag dark_mode in environment staging',
    'delete: a flag the environment does not have is PT404'
);
select is(
    public.delete_feature_flag('dark_mode', 'production'),
    '{"key": "dark_mode", "environment": "production", "deleted": true}'::jsonb,
    'delete_feature_flag deletes the row'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "aaaaaaaa-0000-4000-8000-000000000001"}',
        'select public.upsert_feature_flag(''mine'', ''x'', true)')$$,
    '42501', 'permission denied for function upsert_feature_flag',
    'a signed-in user cannot manage flags'
);
select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}',
        'select public.delete_feature_flag(''beta'', ''all'')')$$,
    '42501', 'permission denied for function delete_feature_flag',
    'anon cannot delete flags'
);

select * from finish();
rollback;
