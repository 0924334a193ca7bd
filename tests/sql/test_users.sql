-- Users (supabase/functions-sql/*_users.sql, migration 20260401110100_user_verification.sql):
-- one-time codes (private.otp_code, issue_otp, verify_otp, private.purge_otp_codes), GDPR erasure
-- (erase_user) and anonymize_inactive_users, their pg_cron jobs and who may call them. Runs as
-- postgres on a fresh clone, in one transaction: now() is constant, so each call's writes (a
-- wrong attempt's count among them) are visible to the next statement.
begin;
select plan(120);

-- Helpers ----------------------------------------------------------------------------------------

-- Codes issue_otp returned, what the RPCs returned and counts, each by a note. The API roles
-- write these from inside tests.as_role; pg_temp functions they cannot call.
create temp table codes (note text primary key, code text not null);
create temp table returned (note text primary key, result jsonb);
create temp table seen (note text primary key, n bigint, t text);
grant select, insert on pg_temp.codes, pg_temp.returned, pg_temp.seen
to anon, authenticated, service_role;

create function pg_temp.code(p_note text)
returns text
language sql
as $$ select code from pg_temp.codes where note = p_note $$;

create function pg_temp.returned(p_note text)
returns jsonb
language sql
as $$ select result from pg_temp.returned where note = p_note $$;

create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

-- Another code than p_code: the next one.
create function pg_temp.wrong(p_code text)
returns text
language sql
as $$ select lpad(((p_code::integer + 1) % 1000000)::text, 6, '0') $$;

-- Users: A verifies, B exhausts a code, C lets one expire, D replaces one, E meets the cap, F has
-- no code, S calls as service_role. +250788300009 has no user.
insert into public.users (id, phone_number) values
('11111111-1111-4111-8111-111111111111', '+250788300001'),
('22222222-2222-4222-8222-222222222222', '+250788300002'),
('33333333-3333-4333-8333-333333333333', '+250788300003'),
('44444444-4444-4444-8444-444444444444', '+250788300004'),
('55555555-5555-4555-8555-555555555555', '+250788300005'),
('66666666-6666-4666-8666-666666666666', '+250788300006'),
('99999999-9999-4999-8999-999999999999', '+250788300007');

-- The tables -------------------------------------------------------------------------------------

select has_table('private', 'otp_codes', 'private.otp_codes exists');
select has_table('private', 'otp_issues', 'private.otp_issues exists');
select results_eq(
    $$select relname::text collate "default", relrowsecurity,
             coalesce(obj_description(oid, 'pg_class'), '') <> ''
        from pg_catalog.pg_class
       where oid in ('private.otp_codes'::regclass, 'private.otp_issues'::regclass)
       order by relname$$,
    $$values ('otp_codes', true, true), ('otp_issues', true, true)$$,
    'otp_codes and otp_issues have row level security enabled and a comment'
);
select is_empty(
    $$select r.rolname, t.name
        from (values ('anon'), ('authenticated'), ('service_role')) as r (rolname)
       cross join (values ('private.otp_codes'), ('private.otp_issues')) as t (name)
       where has_table_privilege(r.rolname, t.name, 'select, insert, update, delete, truncate')$$,
    'no API role has any privilege on otp_codes or otp_issues'
);
select throws_ok(
    $$select tests.as_role('service_role', 'select * from private.otp_codes')$$,
    '42501',
    'permission denied for schema private',
    'service_role cannot read the one-time codes'
);
select results_eq(
    $$select table_name::text collate "default", column_name::text collate "default"
        from information_schema.columns
       where table_schema = 'private' and table_name in ('otp_codes', 'otp_issues')
         and data_type in ('text', 'character varying', 'character', 'bytea', 'jsonb', 'json')
       order by 1, 2$$,
    $$values ('otp_codes', 'code_hash'), ('otp_codes', 'phone_number'),
             ('otp_issues', 'phone_number')$$,
    'the only text columns of the code tables are the phone number and the code''s hash'
);

-- private.otp_code -------------------------------------------------------------------------------

create temp table draws as
select private.otp_code() as code from generate_series(1, 2000);

select is_empty(
    $$select code from pg_temp.draws where code !~ '^[0-9]{6}$'$$,
    'otp_code returns 6 digits, every time'
);
select ok(
    exists (select from pg_temp.draws where code < '100000'),
    'otp_code pads codes below 100000 with zeros (a tenth of them start with 0)'
);
select cmp_ok(
    (select count(distinct code) from pg_temp.draws), '>=', 1980::bigint,
    'otp_code repeats itself rarely: 2000 codes have at least 1980 values'
);
select is_empty(
    $$select d.digit, count(p.code)
        from generate_series(0, 9) as d (digit)
        left join pg_temp.draws as p on left(p.code, 1) = d.digit::text
       group by d.digit
      having count(p.code) not between 120 and 280$$,
    'otp_code spreads codes evenly: each first digit starts 120 to 280 of 2000 codes'
);

-- issue_otp: the happy path ----------------------------------------------------------------------

insert into pg_temp.codes values ('a', public.issue_otp('+250788300001'));

select ok(pg_temp.code('a') ~ '^[0-9]{6}$', 'issue_otp returns a code of 6 digits');
select results_eq(
    $$select user_id, attempts, expires_at, created_at, verified_at
        from private.otp_codes where phone_number = '+250788300001'$$,
    $$values ('11111111-1111-4111-8111-111111111111'::uuid, 0, now() + interval '5 minutes',
              now(), null::timestamptz)$$,
    'issue_otp stores the code for the phone''s user, no attempts, expiring in 5 minutes'
);
select ok(
    (select code_hash ~ '^\$2a\$08\$.{53}$' from private.otp_codes
      where phone_number = '+250788300001'),
    'the code is stored as a bcrypt hash of cost 8'
);
select is(
    (select extensions.crypt(pg_temp.code('a'), code_hash) = code_hash from private.otp_codes
      where phone_number = '+250788300001'),
    true,
    'the stored hash is the hash of the code returned'
);
select is_empty(
    $$select o.phone_number from private.otp_codes as o
       where strpos(o.code_hash, pg_temp.code('a')) > 0 or o.phone_number = pg_temp.code('a')$$,
    'the code itself appears nowhere in otp_codes'
);
select results_eq(
    $$select count(*), min(issued_at) from private.otp_issues
       where phone_number = '+250788300001'$$,
    $$values (1::bigint, now())$$,
    'issue_otp logs the issue, now'
);

-- A phone with no user gets no code (verify_otp could never accept it), registers nobody and
-- uses up none of its hourly cap: six refusals in a row are all PT404, none PT429.
insert into pg_temp.seen (note, n) values ('users', (select count(*) from public.users));
select throws_ok(
    $$select public.issue_otp('250 788 300 009') from generate_series(1, 6)$$,
    'PT404',
    'issue_otp: no user has this phone number',
    'issue_otp refuses a phone with no user (written differently, the same phone)'
);
select throws_ok(
    $$select public.issue_otp('+250788300009')$$,
    'PT404',
    'issue_otp: no user has this phone number',
    'issue_otp refuses a phone with no user again: the refusals counted nothing against the cap'
);
select results_eq(
    $$select (select count(*) from private.otp_codes where phone_number = '+250788300009'),
             (select count(*) from private.otp_issues where phone_number = '+250788300009'),
             (select count(*) from public.users)$$,
    $$select 0::bigint, 0::bigint, pg_temp.seen('users')$$,
    'refused issues store no code, log no issue and register nobody'
);

-- verify_otp: the happy path ---------------------------------------------------------------------

insert into pg_temp.returned values
('a', public.verify_otp('+250788300001', pg_temp.code('a')));

select is(
    pg_temp.returned('a'),
    jsonb_build_object(
        'verified', true,
        'user_id', '11111111-1111-4111-8111-111111111111'::uuid,
        'verified_at', now()
    ),
    'verify_otp with the right code answers verified, with the user and when'
);
select results_eq(
    $$select verified_at, last_active_at from public.users
       where id = '11111111-1111-4111-8111-111111111111'$$,
    $$values (now(), now())$$,
    'verify_otp marks the user verified (and active) now'
);
select results_eq(
    $$select attempts, verified_at from private.otp_codes where phone_number = '+250788300001'$$,
    $$values (0, now())$$,
    'verify_otp uses the code up'
);
select results_eq(
    $$select aggregate_type, aggregate_id, payload from public.outbox_events
       where event_type = 'user.verified'$$,
    $$values ('user', '11111111-1111-4111-8111-111111111111',
              jsonb_build_object(
                  'user_id', '11111111-1111-4111-8111-111111111111'::uuid,
                  'verified_at', now(),
                  'method', 'otp'
              ))$$,
    'verify_otp emits one user.verified event for the user'
);
select throws_ok(
    format($$select public.verify_otp('+250788300001', %L)$$, pg_temp.code('a')),
    'PT409',
    'verify_otp: this code was already used; request a new one',
    'a used code is refused when presented again'
);
select is(
    (select count(*) from public.outbox_events where event_type = 'user.verified'),
    1::bigint,
    'the refused reuse emitted no second user.verified event'
);

-- verify_otp: wrong codes are counted, 3 at most -------------------------------------------------

insert into pg_temp.codes values ('b', public.issue_otp('+250788300002'));
insert into pg_temp.returned values
('b wrong 1', public.verify_otp('+250788300002', pg_temp.wrong(pg_temp.code('b'))));

select is(
    pg_temp.returned('b wrong 1'),
    '{"verified": false, "reason": "wrong_code", "attempts_left": 2,
      "message": "wrong code, 2 attempts left"}'::jsonb,
    'a wrong code is answered, not raised: not verified, wrong code, 2 attempts left'
);
select is(
    (select attempts from private.otp_codes where phone_number = '+250788300002'), 1,
    'the wrong attempt is counted on the code'
);

insert into pg_temp.returned values
('b wrong 2', public.verify_otp('+250788300002', pg_temp.wrong(pg_temp.code('b'))));

select is(
    pg_temp.returned('b wrong 2'),
    '{"verified": false, "reason": "wrong_code", "attempts_left": 1,
      "message": "wrong code, 1 attempt left"}'::jsonb,
    'a second wrong code leaves 1 attempt'
);

insert into pg_temp.returned values
('b wrong 3', public.verify_otp('+250788300002', pg_temp.wrong(pg_temp.code('b'))));

select is(
    pg_temp.returned('b wrong 3'),
    '{"verified": false, "reason": "wrong_code", "attempts_left": 0,
      "message": "wrong code, no attempts left: request a new code"}'::jsonb,
    'a third wrong code leaves no attempts and says to request a new code'
);
select is(
    (select attempts from private.otp_codes where phone_number = '+250788300002'), 3,
    'the code has had 3 wrong attempts'
);
select throws_ok(
    format($$select public.verify_otp('+250788300002', %L)$$, pg_temp.code('b')),
    'PT429',
    'verify_otp: this code had 3 wrong attempts; request a new one',
    'after 3 wrong attempts even the right code is refused'
);
select throws_ok(
    format($$select public.verify_otp('+250788300002', %L)$$, pg_temp.wrong(pg_temp.code('b'))),
    'PT429',
    'verify_otp: this code had 3 wrong attempts; request a new one',
    'after 3 wrong attempts a fourth wrong code is refused, not counted'
);
select results_eq(
    $$select u.verified_at, o.attempts,
             (select count(*) from public.outbox_events as e
               where e.event_type = 'user.verified' and e.aggregate_id = u.id::text)
        from public.users as u
        join private.otp_codes as o on o.phone_number = u.phone_number
       where u.id = '22222222-2222-4222-8222-222222222222'$$,
    $$values (null::timestamptz, 3, 0::bigint)$$,
    'the exhausted code verified nobody, emitted nothing, and its count stayed at 3'
);

insert into pg_temp.codes values ('b again', public.issue_otp('+250788300002'));
insert into pg_temp.returned values
('b again', public.verify_otp('+250788300002', pg_temp.code('b again')));

select is(
    pg_temp.returned('b again') ->> 'verified', 'true',
    'a new code after an exhausted one verifies (its attempts start again)'
);

-- issue_otp replaces the phone's code ----------------------------------------------------------

insert into pg_temp.codes values ('d old', public.issue_otp('+250788300004'));
insert into pg_temp.returned values
('d old wrong', public.verify_otp('+250788300004', pg_temp.wrong(pg_temp.code('d old'))));
insert into pg_temp.seen (note, t) values
(
    'd old hash',
    (select code_hash from private.otp_codes where phone_number = '+250788300004')
);
insert into pg_temp.codes values ('d', public.issue_otp('+250788300004'));

select results_eq(
    $$select count(*), min(attempts), bool_and(code_hash <> (
                 select t from pg_temp.seen where note = 'd old hash'
             ))
        from private.otp_codes where phone_number = '+250788300004'$$,
    $$values (1::bigint, 0, true)$$,
    'a new code replaces the phone''s last one: one row, a new hash, no attempts'
);
select is(
    (select count(*) from private.otp_issues where phone_number = '+250788300004'), 2::bigint,
    'both issues are logged'
);

insert into pg_temp.returned values
('d old code', public.verify_otp('+250788300004', pg_temp.code('d old')));

select is(
    pg_temp.returned('d old code') ->> 'reason', 'wrong_code',
    'the replaced code no longer verifies'
);

insert into pg_temp.returned values
('d', public.verify_otp('250788300004', ' ' || pg_temp.code('d') || ' '));

select is(
    pg_temp.returned('d') ->> 'verified', 'true',
    'the new code verifies, after a wrong attempt, with the number and code written loosely'
);

-- verify_otp: an expired code --------------------------------------------------------------------

insert into pg_temp.codes values ('c', public.issue_otp('+250788300003'));
update private.otp_codes set expires_at = now() - interval '1 second'
where phone_number = '+250788300003';

select throws_ok(
    format($$select public.verify_otp('+250788300003', %L)$$, pg_temp.code('c')),
    '22023',
    'verify_otp: this code expired; request a new one',
    'an expired code is refused, even when right'
);
select throws_ok(
    format($$select public.verify_otp('+250788300003', %L)$$, pg_temp.wrong(pg_temp.code('c'))),
    '22023',
    'verify_otp: this code expired; request a new one',
    'a wrong code against an expired one is told it expired'
);
select results_eq(
    $$select u.verified_at, o.attempts from public.users as u
        join private.otp_codes as o on o.phone_number = u.phone_number
       where u.id = '33333333-3333-4333-8333-333333333333'$$,
    $$values (null::timestamptz, 0)$$,
    'the expired code verified nobody and counted no attempt'
);

update private.otp_codes set expires_at = now() + interval '1 second'
where phone_number = '+250788300003';
insert into pg_temp.returned values
('c', public.verify_otp('+250788300003', pg_temp.code('c')));

select is(
    pg_temp.returned('c') ->> 'verified', 'true',
    'a code a second from expiring still verifies'
);

-- Bad input and what is not there ----------------------------------------------------------------

select throws_ok(
    $$select public.issue_otp('not a phone')$$,
    '22023',
    'issue_otp: p_phone_number must be a phone number (E.164, e.g. +250788123456; got '
    || '''not a phone'')',
    'issue_otp refuses a string that is no phone number'
);
select throws_ok(
    $$select public.issue_otp(null)$$,
    '22023',
    'issue_otp: p_phone_number must be a phone number (E.164, e.g. +250788123456; got null)',
    'issue_otp refuses a null phone number'
);
select throws_ok(
    $$select public.verify_otp('0788300001', '123456')$$,
    '22023',
    'verify_otp: p_phone_number must be a phone number (E.164, e.g. +250788123456; got '
    || '''0788300001'')',
    'verify_otp refuses a national number without country code'
);
select throws_ok(
    $$select public.verify_otp(null, '123456')$$,
    '22023',
    'verify_otp: p_phone_number must be a phone number (E.164, e.g. +250788123456; got null)',
    'verify_otp refuses a null phone number'
);
select throws_ok(
    $$select public.verify_otp('+250788300006', '12345')$$,
    '22023',
    'verify_otp: p_code must be the 6 digits of the code sent',
    'verify_otp refuses a code of 5 digits'
);
select throws_ok(
    $$select public.verify_otp('+250788300006', '1234567')$$,
    '22023',
    'verify_otp: p_code must be the 6 digits of the code sent',
    'verify_otp refuses a code of 7 digits'
);
select throws_ok(
    $$select public.verify_otp('+250788300006', '12a456')$$,
    '22023',
    'verify_otp: p_code must be the 6 digits of the code sent',
    'verify_otp refuses a code with a letter'
);
select throws_ok(
    $$select public.verify_otp('+250788300006', null)$$,
    '22023',
    'verify_otp: p_code must be the 6 digits of the code sent',
    'verify_otp refuses a null code'
);
select throws_ok(
    $$select public.verify_otp('+250788300009', '123456')$$,
    'PT404',
    'verify_otp: no user has this phone number',
    'verify_otp refuses a phone with no user, as issue_otp does'
);
select throws_ok(
    $$select public.verify_otp('+250788300006', '123456')$$,
    'PT404',
    'verify_otp: no code was issued to this phone number; request one',
    'verify_otp refuses a user to whom no code was issued'
);
select is(
    (select attempts from private.otp_codes where phone_number = '+250788300006'), null,
    'a refused call stores no attempt'
);

-- A blocked user ----------------------------------------------------------------------------------

-- K was sent a code and then blocked for abuse: the code no longer verifies K, and K gets no
-- new one.
insert into public.users (id, phone_number, display_name) values
('b1000000-0000-4000-8000-000000000001', '+250788300020', 'Kalisa');
insert into pg_temp.codes values ('k', public.issue_otp('+250788300020'));
update public.users
set blocked_at = now(), block_reason = 'abuse'
where id = 'b1000000-0000-4000-8000-000000000001';
select throws_ok(
    format($$select public.verify_otp('+250788300020', %L)$$, pg_temp.code('k')),
    'PT403',
    'verify_otp: the user with this phone number is blocked',
    'verify_otp refuses a blocked user, even with the right code'
);
select ok(
    (select verified_at is null from public.users
      where id = 'b1000000-0000-4000-8000-000000000001')
    and (select verified_at is null and attempts = 0 from private.otp_codes
          where phone_number = '+250788300020'),
    'the blocked user stays unverified and the code unused'
);
select throws_ok(
    $$select public.issue_otp('+250788300020')$$,
    'PT403',
    'issue_otp: the user with this phone number is blocked',
    'issue_otp sends no code to a blocked user'
);
select is(
    (select count(*) from private.otp_issues where phone_number = '+250788300020'), 1::bigint,
    'the refused issue is not counted'
);

-- issue_otp: at most 5 an hour per phone ---------------------------------------------------------

insert into pg_temp.codes
select 'e' || n, public.issue_otp('+250788300005') from generate_series(1, 5) as n;

select is(
    (select count(*) from private.otp_issues where phone_number = '+250788300005'), 5::bigint,
    'five codes in an hour are issued'
);

-- The five as if issued 5 minutes ago, on the second: the next may come in 55 minutes.
update private.otp_issues set issued_at = date_trunc('second', now()) - interval '5 minutes'
where phone_number = '+250788300005';
insert into pg_temp.seen (note, t) values
(
    'e hash',
    (select code_hash from private.otp_codes where phone_number = '+250788300005')
);

select throws_ok(
    $$select public.issue_otp('+250788300005')$$,
    'PT429',
    'issue_otp: at most 5 codes an hour are sent to a phone number; try again in 3300 seconds '
    || '(at ' || to_char(
        (date_trunc('second', now()) + interval '55 minutes') at time zone 'UTC',
        'YYYY-MM-DD"T"HH24:MI:SS"Z"'
    ) || ')',
    'a sixth code within the hour is refused, saying when to try again'
);
select results_eq(
    $$select (select count(*) from private.otp_issues where phone_number = '+250788300005'),
             (select code_hash = (select t from pg_temp.seen where note = 'e hash')
                from private.otp_codes where phone_number = '+250788300005')$$,
    $$values (5::bigint, true)$$,
    'the refused issue was not logged and left the live code as it was'
);
select ok(
    (select extensions.crypt(pg_temp.code('e5'), code_hash) = code_hash
       from private.otp_codes where phone_number = '+250788300005'),
    'the live code is still the fifth one issued'
);

-- An issue an hour and a minute old no longer counts.
update private.otp_issues set issued_at = date_trunc('second', now()) - interval '61 minutes'
where id = (select min(id) from private.otp_issues where phone_number = '+250788300005');

select lives_ok(
    $$insert into pg_temp.codes values ('e6', public.issue_otp('+250788300005'))$$,
    'a code is issued again once the oldest of the five is over an hour old'
);
select throws_ok(
    $$select public.issue_otp('+250788300005')$$,
    'PT429',
    'issue_otp: at most 5 codes an hour are sent to a phone number; try again in 3300 seconds '
    || '(at ' || to_char(
        (date_trunc('second', now()) + interval '55 minutes') at time zone 'UTC',
        'YYYY-MM-DD"T"HH24:MI:SS"Z"'
    ) || ')',
    'the code just issued counts: the next is refused again'
);
select is(
    (select count(*) from private.otp_issues where phone_number = '+250788300002'), 2::bigint,
    'the cap counts per phone: another phone''s issues are its own'
);

-- Who may call the code RPCs ---------------------------------------------------------------------

select throws_ok(
    $$select tests.as_role('anon', 'select public.issue_otp(''+250788300007'')')$$,
    '42501',
    'permission denied for function issue_otp',
    'anon may not call issue_otp'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "99999999-9999-4999-8999-999999999999", "role": "authenticated"}',
        'select public.issue_otp(''+250788300007'')'
    )$$,
    '42501',
    'permission denied for function issue_otp',
    'authenticated, even the phone''s own user, may not call issue_otp'
);
select throws_ok(
    $$select tests.as_role('anon', 'select public.verify_otp(''+250788300007'', ''123456'')')$$,
    '42501',
    'permission denied for function verify_otp',
    'anon may not call verify_otp'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "99999999-9999-4999-8999-999999999999", "role": "authenticated"}',
        'select public.verify_otp(''+250788300007'', ''123456'')'
    )$$,
    '42501',
    'permission denied for function verify_otp',
    'authenticated may not call verify_otp'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.codes select ''s'', public.issue_otp(''+250788300007'')'
    )$$,
    'service_role calls issue_otp'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.returned select ''s'', public.verify_otp(''+250788300007'','
        || ' (select code from pg_temp.codes where note = ''s''))'
    )$$,
    'service_role calls verify_otp'
);
select results_eq(
    $$select (select result ->> 'verified' from pg_temp.returned where note = 's'), verified_at
        from public.users where id = '99999999-9999-4999-8999-999999999999'$$,
    $$values ('true', now())$$,
    'service_role''s code verified its user'
);

-- private.purge_otp_codes ------------------------------------------------------------------------

insert into private.otp_codes (phone_number, code_hash, expires_at) values
('+250788600001', extensions.crypt('000000', extensions.gen_salt('bf', 4)),
 now() - interval '25 hours'),
('+250788600002', extensions.crypt('000000', extensions.gen_salt('bf', 4)),
 now() - interval '23 hours');
insert into private.otp_issues (phone_number, issued_at) values
('+250788600001', now() - interval '61 minutes'),
('+250788600002', now() - interval '59 minutes');
insert into pg_temp.seen (note, n) values
('codes before purge', (select count(*) from private.otp_codes)),
('issues before purge', (select count(*) from private.otp_issues));

select is(
    private.purge_otp_codes(), 3,
    'purge_otp_codes deletes 3 rows: the code expired 25 hours ago and the 2 issues over an '
    || 'hour old (+250788300005''s oldest among them)'
);
select results_eq(
    $$select (select count(*) from private.otp_codes),
             (select count(*) from private.otp_issues),
             exists (select from private.otp_codes where phone_number = '+250788600001'),
             exists (select from private.otp_codes where phone_number = '+250788600002'),
             exists (select from private.otp_issues where issued_at < now() - interval '1 hour')$$,
    $$select pg_temp.seen('codes before purge') - 1, pg_temp.seen('issues before purge') - 2,
             false, true, false$$,
    'purge_otp_codes keeps codes expired less than a day ago and the last hour''s issues'
);

-- erase_user -------------------------------------------------------------------------------------

-- G is erased; H, who wrote too, is not. G's conversations: one active, linked to G, and an
-- older one of G's number from before G was linked. G's sessions: by phone, and by WhatsApp id.
insert into public.users (id, phone_number, wa_user_id, display_name, verified_at) values
(
    '77777777-7777-4777-8777-777777777777', '+250788400001', 'RW.400001', 'Grace',
    now() - interval '1 day'
),
('88888888-8888-4888-8888-888888888888', '+250788400002', 'RW.400002', 'Hakim', null);
insert into public.user_preferences (user_id) values
('77777777-7777-4777-8777-777777777777'),
('88888888-8888-4888-8888-888888888888');
insert into public.whatsapp_sessions (phone_number, wa_user_id, user_id) values
('+250788400001', null, '77777777-7777-4777-8777-777777777777'),
(null, 'RW.400001', null),
('+250788400002', 'RW.400002', '88888888-8888-4888-8888-888888888888');
insert into public.conversation_mappings (id, wa_id, user_id, contact_name, status) values
(
    'c0000000-0000-4000-8000-000000000001', '250788400001',
    '77777777-7777-4777-8777-777777777777', 'Grace', 'active'
),
('c0000000-0000-4000-8000-000000000002', '250788400001', null, 'Grace', 'closed'),
(
    'c0000000-0000-4000-8000-000000000003', '250788400002',
    '88888888-8888-4888-8888-888888888888', 'Hakim', 'active'
);
insert into public.message_tracking (
    wamid, mapping_id, user_id, direction, message_type, status, body, media, content, context
) values
(
    'wamid.g-in', 'c0000000-0000-4000-8000-000000000001',
    '77777777-7777-4777-8777-777777777777', 'INBOUND', 'image', 'received', 'my house',
    '{"id": "media-1", "caption": "my house"}', null, '{"id": "wamid.g-out"}'
),
(
    'wamid.g-out', 'c0000000-0000-4000-8000-000000000001', null, 'OUTBOUND', 'text',
    'sent', 'Your ride is here, Grace', null, null, null
),
(
    'wamid.g-old', 'c0000000-0000-4000-8000-000000000002', null, 'INBOUND', 'location',
    'received', null, null, '{"latitude": -1.95, "longitude": 30.06}', null
),
(
    'wamid.h-in', 'c0000000-0000-4000-8000-000000000003',
    '88888888-8888-4888-8888-888888888888', 'INBOUND', 'text', 'received', 'hello', null,
    null, null
);
insert into pg_temp.codes values ('g', public.issue_otp('+250788400001'));
-- G's card, and H's, which must stay.
insert into pg_temp.returned
select 'card g', to_jsonb(public.add_payment_method(
    '77777777-7777-4777-8777-777777777777', 'card', 'visa',
    '{"number": "4111111111111111", "expiry": "12/29"}'
))
union all
select 'wallet h', to_jsonb(public.add_payment_method(
    '88888888-8888-4888-8888-888888888888', 'mobile_money', 'MTN',
    '{"phone_number": "+250788400002"}'
));
-- What the inbound path said about G and H in the outbox, still there (unpublished, or kept the
-- week after publishing).
insert into public.outbox_events (aggregate_type, aggregate_id, event_type, payload)
select 'user', '77777777-7777-4777-8777-777777777777', 'user.registered', jsonb_build_object(
    'user_id', '77777777-7777-4777-8777-777777777777', 'phone_number', '+250788400001',
    'wa_user_id', 'RW.400001', 'display_name', 'Grace', 'channel', 'whatsapp'
)
union all
select 'conversation', 'c0000000-0000-4000-8000-000000000001', 'conversation.started',
    jsonb_build_object(
        'mapping_id', 'c0000000-0000-4000-8000-000000000001', 'wa_id', '250788400001',
        'user_id', '77777777-7777-4777-8777-777777777777', 'contact_name', 'Grace'
    )
union all
select 'whatsapp_message', t.id::text, 'whatsapp.message_received', jsonb_build_object(
    'message_id', t.id, 'wamid', 'wamid.g-in', 'type', 'image', 'wa_id', '250788400001',
    'body', 'my house', 'media', jsonb_build_object('id', 'media-1'),
    'context', jsonb_build_object('id', 'wamid.g-out')
)
from public.message_tracking as t where t.wamid = 'wamid.g-in'
union all
select 'user', '88888888-8888-4888-8888-888888888888', 'user.registered', jsonb_build_object(
    'user_id', '88888888-8888-4888-8888-888888888888', 'phone_number', '+250788400002',
    'display_name', 'Hakim'
);

select lives_ok(
    $$select tests.as_caller(
        'service_role',
        '{"role": "service_role"}',
        'insert into pg_temp.returned'
        ' select ''erase g'', public.erase_user(''77777777-7777-4777-8777-777777777777'')'
    )$$,
    'service_role calls erase_user'
);
select is(
    pg_temp.returned('erase g'),
    jsonb_build_object(
        'user_id', '77777777-7777-4777-8777-777777777777'::uuid,
        'erased_at', now(),
        'already_erased', false,
        'preferences_deleted', 1,
        'sessions_deleted', 2,
        'conversations_anonymised', 2,
        'messages_blanked', 3,
        'events_scrubbed', 3,
        'otp_codes_deleted', 1,
        'payment_methods_deleted', 1,
        'dead_letters_deleted', 0,
        'locations_deleted', 0,
        -- G had nothing queued: see test_erasure_reach.sql.
        'queued_messages_cancelled', 0,
        'queued_messages_blanked', 0,
        'queue_events_scrubbed', 0
    ),
    'erase_user answers what it erased: preferences, 2 sessions, 2 conversations, 3 messages, '
    || '3 events, the code, the payment method'
);
select results_eq(
    $$select user_id, masked_label from public.payment_methods
       where user_id in ('77777777-7777-4777-8777-777777777777',
                         '88888888-8888-4888-8888-888888888888')$$,
    $$values ('88888888-8888-4888-8888-888888888888'::uuid, 'MTN **** 0002')$$,
    'the erased user''s payment method is gone; another user''s stays'
);
select results_eq(
    $$select event_type, payload from public.outbox_events
       where event_type in ('user.registered', 'conversation.started', 'whatsapp.message_received')
         and (aggregate_id in ('77777777-7777-4777-8777-777777777777',
                               '88888888-8888-4888-8888-888888888888',
                               'c0000000-0000-4000-8000-000000000001')
              or payload ->> 'wamid' = 'wamid.g-in')
       order by event_type, aggregate_id$$,
    $$select * from (values
        ('conversation.started', jsonb_build_object(
            'mapping_id', 'c0000000-0000-4000-8000-000000000001',
            'user_id', '77777777-7777-4777-8777-777777777777', 'erased', true)),
        ('user.registered', jsonb_build_object(
            'user_id', '77777777-7777-4777-8777-777777777777', 'channel', 'whatsapp',
            'erased', true)),
        ('user.registered', jsonb_build_object(
            'user_id', '88888888-8888-4888-8888-888888888888', 'phone_number', '+250788400002',
            'display_name', 'Hakim')),
        ('whatsapp.message_received', (
            select jsonb_build_object(
                'message_id', t.id, 'wamid', 'wamid.g-in', 'type', 'image', 'erased', true)
            from public.message_tracking as t where t.wamid = 'wamid.g-in'))
    ) as e (event_type, payload)$$,
    'the erased user''s outbox events keep their ids and lose phone, ids, names, text, media and '
    || 'context; another user''s are untouched'
);
select results_eq(
    $$select id, phone_number, wa_user_id, display_name, blocked_at, block_reason, verified_at
        from public.users where id = '77777777-7777-4777-8777-777777777777'$$,
    $$values ('77777777-7777-4777-8777-777777777777'::uuid, null::text, null::text, null::text,
              now(), 'erased (GDPR)', now() - interval '1 day')$$,
    'the erased user keeps its id, loses phone, WhatsApp id and name, and is blocked as erased'
);
select is_empty(
    $$select user_id from public.user_preferences
       where user_id = '77777777-7777-4777-8777-777777777777'$$,
    'the erased user''s preferences are deleted'
);
select is_empty(
    $$select id from public.whatsapp_sessions
       where user_id = '77777777-7777-4777-8777-777777777777'
          or phone_number = '+250788400001' or wa_user_id = 'RW.400001'$$,
    'the erased user''s sessions are deleted, by user, by phone and by WhatsApp id'
);
select results_eq(
    $$select id, wa_id, contact_name, status, user_id
        from public.conversation_mappings
       where id in ('c0000000-0000-4000-8000-000000000001',
                    'c0000000-0000-4000-8000-000000000002')
       order by id$$,
    $$values
        ('c0000000-0000-4000-8000-000000000001'::uuid,
         'erased:c0000000-0000-4000-8000-000000000001', null::text, 'closed',
         '77777777-7777-4777-8777-777777777777'::uuid),
        ('c0000000-0000-4000-8000-000000000002'::uuid,
         'erased:c0000000-0000-4000-8000-000000000002', null::text, 'closed', null::uuid)$$,
    'the erased user''s conversations keep their ids, lose the contact''s id and name, and close'
);
select results_eq(
    $$select wamid, mapping_id, user_id, body, media, content, context
        from public.message_tracking where wamid like 'wamid.g-%' order by wamid$$,
    $$values
        ('wamid.g-in', 'c0000000-0000-4000-8000-000000000001'::uuid,
         '77777777-7777-4777-8777-777777777777'::uuid, null::text, null::jsonb, null::jsonb,
         null::jsonb),
        ('wamid.g-old', 'c0000000-0000-4000-8000-000000000002'::uuid, null::uuid, null, null,
         null, null),
        ('wamid.g-out', 'c0000000-0000-4000-8000-000000000001'::uuid, null::uuid, null, null,
         null, null)$$,
    'the messages both ways keep their rows and links but lose text, media, content and context'
);
select is_empty(
    $$select phone_number from private.otp_codes where phone_number = '+250788400001'
      union all
      select phone_number from private.otp_issues where phone_number = '+250788400001'$$,
    'the erased user''s one-time code and its issue log are deleted'
);
select results_eq(
    $$select u.phone_number, u.display_name, p.user_id is not null, s.phone_number, m.wa_id,
             m.contact_name, m.status, t.body
        from public.users as u
        left join public.user_preferences as p on p.user_id = u.id
        left join public.whatsapp_sessions as s on s.user_id = u.id
        left join public.conversation_mappings as m on m.user_id = u.id
        left join public.message_tracking as t on t.user_id = u.id
       where u.id = '88888888-8888-4888-8888-888888888888'$$,
    $$values ('+250788400002', 'Hakim', true, '+250788400002', '250788400002', 'Hakim',
              'active', 'hello')$$,
    'another user''s row, preferences, session, conversation and messages are untouched'
);
select results_eq(
    $$select actor_type::text, actor_identifier::text, action::text, resource_type::text,
             resource_id, metadata::jsonb
        from public.system_audit_logs where action = 'user.erased'$$,
    $$values ('service', 'service_role', 'user.erased', 'user',
              '77777777-7777-4777-8777-777777777777',
              '{"reason": "request", "preferences_deleted": 1, "sessions_deleted": 2,
                "conversations_anonymised": 2, "messages_blanked": 3, "events_scrubbed": 3,
                "otp_codes_deleted": 1, "payment_methods_deleted": 1,
                "dead_letters_deleted": 0, "locations_deleted": 0, "queued_messages_cancelled": 0,
                "queued_messages_blanked": 0, "queue_events_scrubbed": 0}'::jsonb)$$,
    'erase_user writes one audit record: the service erased the user, with counts'
);
select is_empty(
    $$select id from public.system_audit_logs
       where action = 'user.erased'
         and (to_jsonb(system_audit_logs)::text
             ~ '\+250788400001|RW\.400001|Grace|my house|Your ride')$$,
    'the audit record holds none of the personal data erased'
);
select results_eq(
    $$select aggregate_type, aggregate_id, payload from public.outbox_events
       where event_type = 'user.erased'$$,
    $$values ('user', '77777777-7777-4777-8777-777777777777',
              jsonb_build_object(
                  'user_id', '77777777-7777-4777-8777-777777777777'::uuid,
                  'erased_at', now(),
                  'reason', 'request'
              ))$$,
    'erase_user emits one user.erased event'
);
select throws_ok(
    $$select public.verify_otp('+250788400001', '123456')$$,
    'PT404',
    'verify_otp: no user has this phone number',
    'the erased user can no longer be found by phone number'
);

-- Erasing again changes nothing and answers in the same shape.
insert into pg_temp.returned values
('erase g again', public.erase_user('77777777-7777-4777-8777-777777777777'));

select is(
    pg_temp.returned('erase g again'),
    jsonb_build_object(
        'user_id', '77777777-7777-4777-8777-777777777777'::uuid,
        'erased_at', now(),
        'already_erased', true,
        'preferences_deleted', 0,
        'sessions_deleted', 0,
        'conversations_anonymised', 0,
        'messages_blanked', 0,
        'events_scrubbed', 0,
        'otp_codes_deleted', 0,
        'payment_methods_deleted', 0,
        'dead_letters_deleted', 0,
        'locations_deleted', 0,
        'queued_messages_cancelled', 0,
        'queued_messages_blanked', 0,
        'queue_events_scrubbed', 0
    ),
    'erasing an erased user is no error: already erased, nothing more deleted'
);
select results_eq(
    $$select (select count(*) from public.system_audit_logs where action = 'user.erased'),
             (select count(*) from public.outbox_events where event_type = 'user.erased')$$,
    $$values (1::bigint, 1::bigint)$$,
    'erasing again writes no second audit record and no second event'
);

select throws_ok(
    $$select public.erase_user('0badc0de-0000-4000-8000-000000000000')$$,
    'PT404',
    'erase_user: no user has id 0badc0de-0000-4000-8000-000000000000',
    'erase_user refuses an unknown user id'
);
select throws_ok(
    $$select public.erase_user(null)$$,
    '22023',
    'erase_user: p_user_id must be a user id',
    'erase_user refuses a null user id'
);
select throws_ok(
    $$select tests.as_role(
        'anon', 'select public.erase_user(''88888888-8888-4888-8888-888888888888'')'
    )$$,
    '42501',
    'permission denied for function erase_user',
    'anon may not call erase_user'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "88888888-8888-4888-8888-888888888888", "role": "authenticated"}',
        'select public.erase_user(''88888888-8888-4888-8888-888888888888'')'
    )$$,
    '42501',
    'permission denied for function erase_user',
    'authenticated, even the user themself, may not call erase_user'
);
select results_eq(
    $$select (select count(*) from public.system_audit_logs where action = 'user.erased'),
             (select phone_number from public.users
               where id = '88888888-8888-4888-8888-888888888888')$$,
    $$values (1::bigint, '+250788400002')$$,
    'the refused erasures wrote no audit record and erased nobody'
);

-- anonymize_inactive_users -----------------------------------------------------------------------

-- Inactive for 200 days; registered 200 days ago and never active; active 10 days ago;
-- registered 200 days ago but active yesterday; erased 300 days ago; registered now and never
-- active; active 179 days ago.
insert into public.users (
    id, phone_number, display_name, registered_at, last_active_at, blocked_at, block_reason
) values
(
    'a0000000-0000-4000-8000-000000000001', '+250788500001', 'Inactive',
    now() - interval '300 days', now() - interval '200 days', null, null
),
(
    'a0000000-0000-4000-8000-000000000002', '+250788500002', 'Never active',
    now() - interval '200 days', null, null, null
),
(
    'a0000000-0000-4000-8000-000000000003', '+250788500003', 'Ten days',
    now() - interval '300 days', now() - interval '10 days', null, null
),
(
    'a0000000-0000-4000-8000-000000000004', '+250788500004', 'Yesterday',
    now() - interval '200 days', now() - interval '1 day', null, null
),
(
    'a0000000-0000-4000-8000-000000000005', null, null,
    now() - interval '400 days', now() - interval '300 days', now() - interval '100 days',
    'erased (GDPR)'
),
(
    'a0000000-0000-4000-8000-000000000006', '+250788500006', 'New', now(), null, null, null
),
(
    'a0000000-0000-4000-8000-000000000007', '+250788500007', 'Almost',
    now() - interval '300 days', now() - interval '179 days', null, null
),
(
    'a0000000-0000-4000-8000-000000000008', '+250788500008', 'Driving',
    now() - interval '300 days', now() - interval '250 days', null, null
);
insert into public.user_preferences (user_id) values ('a0000000-0000-4000-8000-000000000001');
-- A driver silent on WhatsApp for 250 days whose app reported a position an hour ago.
insert into public.locations (user_id, location_type, coordinates, recorded_at) values (
    'a0000000-0000-4000-8000-000000000008', 'current',
    extensions.st_setsrid(extensions.st_makepoint(30.06, -1.95), 4326), now() - interval '1 hour'
);

select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.seen (note, n) select ''anonymize'', public.anonymize_inactive_users()'
    )$$,
    'service_role calls anonymize_inactive_users'
);
select is(
    pg_temp.seen('anonymize'), 2::bigint,
    'anonymize_inactive_users erases 2 users by default (inactive for over 180 days)'
);
select results_eq(
    $$select id, phone_number, display_name, block_reason
        from public.users where id::text like 'a0000000-%' order by id$$,
    $$values
        ('a0000000-0000-4000-8000-000000000001'::uuid, null::text, null::text,
         'erased (GDPR)'),
        ('a0000000-0000-4000-8000-000000000002'::uuid, null, null, 'erased (GDPR)'),
        ('a0000000-0000-4000-8000-000000000003'::uuid, '+250788500003', 'Ten days', null),
        ('a0000000-0000-4000-8000-000000000004'::uuid, '+250788500004', 'Yesterday', null),
        ('a0000000-0000-4000-8000-000000000005'::uuid, null, null, 'erased (GDPR)'),
        ('a0000000-0000-4000-8000-000000000006'::uuid, '+250788500006', 'New', null),
        ('a0000000-0000-4000-8000-000000000007'::uuid, '+250788500007', 'Almost', null),
        ('a0000000-0000-4000-8000-000000000008'::uuid, '+250788500008', 'Driving', null)$$,
    'the inactive and the never active of 200 days are erased; the recently active, the new, '
    || 'a driver whose app reported a position within the days, and the already erased are left'
);
select is_empty(
    $$select user_id from public.user_preferences
       where user_id = 'a0000000-0000-4000-8000-000000000001'$$,
    'an inactive user is erased as erase_user erases: preferences deleted'
);
select results_eq(
    $$select actor_type::text, actor_identifier::text, resource_id, metadata ->> 'reason'
        from public.system_audit_logs
       where action = 'user.erased' and resource_id like 'a0000000-%'
       order by resource_id$$,
    $$values
        ('system', 'anonymize_inactive_users', 'a0000000-0000-4000-8000-000000000001',
         'inactive'),
        ('system', 'anonymize_inactive_users', 'a0000000-0000-4000-8000-000000000002',
         'inactive')$$,
    'each inactive user erased has an audit record by the system, reason inactive'
);
select results_eq(
    $$select aggregate_id, payload ->> 'reason' from public.outbox_events
       where event_type = 'user.erased' and aggregate_id like 'a0000000-%'
       order by aggregate_id$$,
    $$values ('a0000000-0000-4000-8000-000000000001', 'inactive'),
             ('a0000000-0000-4000-8000-000000000002', 'inactive')$$,
    'each inactive user erased has a user.erased event, reason inactive'
);
select is(
    public.anonymize_inactive_users(), 0,
    'run again, anonymize_inactive_users finds nobody left to erase'
);
select is(
    public.anonymize_inactive_users(5, 1), 1,
    'with p_days 5 and p_limit 1, anonymize_inactive_users erases one user'
);
select is(
    (select block_reason from public.users where id = 'a0000000-0000-4000-8000-000000000007'),
    'erased (GDPR)',
    'the longest inactive goes first: the user last active 179 days ago, not 10'
);
select is(
    public.anonymize_inactive_users(5, 1), 1,
    'the next call erases the next one'
);
select results_eq(
    $$select id, block_reason from public.users
       where id in ('a0000000-0000-4000-8000-000000000003',
                    'a0000000-0000-4000-8000-000000000004',
                    'a0000000-0000-4000-8000-000000000006',
                    'a0000000-0000-4000-8000-000000000007')
       order by id$$,
    $$values
        ('a0000000-0000-4000-8000-000000000003'::uuid, 'erased (GDPR)'),
        ('a0000000-0000-4000-8000-000000000004'::uuid, null),
        ('a0000000-0000-4000-8000-000000000006'::uuid, null),
        ('a0000000-0000-4000-8000-000000000007'::uuid, 'erased (GDPR)')$$,
    'the users active 10 and 179 days ago are erased; yesterday''s and the new one are not'
);
select throws_ok(
    $$select public.anonymize_inactive_users(0)$$,
    '22023',
    'anonymize_inactive_users: p_days must be 1 or more (got 0)',
    'anonymize_inactive_users refuses p_days 0'
);
select throws_ok(
    $$select public.anonymize_inactive_users(-30)$$,
    '22023',
    'anonymize_inactive_users: p_days must be 1 or more (got -30)',
    'anonymize_inactive_users refuses a negative p_days'
);
select throws_ok(
    $$select public.anonymize_inactive_users(null)$$,
    '22023',
    'anonymize_inactive_users: p_days must be 1 or more (got null)',
    'anonymize_inactive_users refuses a null p_days'
);
select throws_ok(
    $$select public.anonymize_inactive_users(180, 0)$$,
    '22023',
    'anonymize_inactive_users: p_limit must be 1 to 100000 (got 0)',
    'anonymize_inactive_users refuses p_limit 0'
);
select throws_ok(
    $$select public.anonymize_inactive_users(180, 100001)$$,
    '22023',
    'anonymize_inactive_users: p_limit must be 1 to 100000 (got 100001)',
    'anonymize_inactive_users refuses a p_limit over 100000'
);
select throws_ok(
    $$select public.anonymize_inactive_users(180, null)$$,
    '22023',
    'anonymize_inactive_users: p_limit must be 1 to 100000 (got null)',
    'anonymize_inactive_users refuses a null p_limit'
);
select throws_ok(
    $$select tests.as_role('anon', 'select public.anonymize_inactive_users()')$$,
    '42501',
    'permission denied for function anonymize_inactive_users',
    'anon may not call anonymize_inactive_users'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "a0000000-0000-4000-8000-000000000004", "role": "authenticated"}',
        'select public.anonymize_inactive_users()'
    )$$,
    '42501',
    'permission denied for function anonymize_inactive_users',
    'authenticated may not call anonymize_inactive_users'
);

-- pg_cron jobs -----------------------------------------------------------------------------------

select results_eq(
    $$select jobname::text collate "default", schedule, command, active
        from cron.job
       where jobname in ('anonymize-inactive-users', 'purge-otp-codes')
       order by jobname collate "C"$$,
    $$values
        ('anonymize-inactive-users', '17 * * * *', 'select public.anonymize_inactive_users()',
         true),
        ('purge-otp-codes', '29 * * * *', 'select private.purge_otp_codes()', true)$$,
    'pg_cron erases inactive users and purges old codes hourly'
);

-- The functions ----------------------------------------------------------------------------------

select results_eq(
    $$select p.oid::regprocedure::text, p.prosecdef, p.proconfig collate "default",
             l.lanname = 'plpgsql'
        from pg_catalog.pg_proc as p
        join pg_catalog.pg_language as l on l.oid = p.prolang
       where p.oid in (
           'public.issue_otp(text)'::regprocedure,
           'public.verify_otp(text, text)'::regprocedure,
           'public.erase_user(uuid)'::regprocedure,
           'public.anonymize_inactive_users(integer, integer)'::regprocedure
       )
       order by 1$$,
    $$values
        ('anonymize_inactive_users(integer,integer)', true, array['search_path=""'], true),
        ('erase_user(uuid)', true, array['search_path=""'], true),
        ('issue_otp(text)', true, array['search_path=""'], true),
        ('verify_otp(text,text)', true, array['search_path=""'], true)$$,
    'the four RPCs are PL/pgSQL, security definer, with search_path pinned to empty'
);
select results_eq(
    $$select p.oid::regprocedure::text, p.prosecdef, p.proconfig collate "default"
        from pg_catalog.pg_proc as p
       where p.oid in (
           'private.otp_code()'::regprocedure,
           'private.purge_otp_codes()'::regprocedure,
           'private.erase_user_data(uuid, text, text, text)'::regprocedure
       )
       order by 1$$,
    $$values
        ('private.erase_user_data(uuid,text,text,text)', false, array['search_path=""']),
        ('private.otp_code()', false, array['search_path=""']),
        ('private.purge_otp_codes()', false, array['search_path=""'])$$,
    'the private helpers run with their caller''s rights, search_path pinned to empty'
);
select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.oid in (
           'public.issue_otp(text)'::regprocedure,
           'public.verify_otp(text, text)'::regprocedure,
           'public.erase_user(uuid)'::regprocedure,
           'public.anonymize_inactive_users(integer, integer)'::regprocedure,
           'private.otp_code()'::regprocedure,
           'private.purge_otp_codes()'::regprocedure,
           'private.erase_user_data(uuid, text, text, text)'::regprocedure
       )
         and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''$$,
    'every users function has a comment'
);
select is_empty(
    $$select r.rolname, p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
       cross join (values ('public'), ('anon'), ('authenticated')) as r (rolname)
       where p.oid in (
           'public.issue_otp(text)'::regprocedure,
           'public.verify_otp(text, text)'::regprocedure,
           'public.erase_user(uuid)'::regprocedure,
           'public.anonymize_inactive_users(integer, integer)'::regprocedure
       )
         and (
             (r.rolname = 'public' and exists (
                 select from aclexplode(p.proacl) as a
                  where a.grantee = 0 and a.privilege_type = 'EXECUTE'
             ))
             or (r.rolname <> 'public' and has_function_privilege(r.rolname, p.oid, 'execute'))
         )$$,
    'neither PUBLIC, anon nor authenticated may execute the four RPCs'
);
select ok(
    has_function_privilege('service_role', 'public.issue_otp(text)', 'execute')
    and has_function_privilege('service_role', 'public.verify_otp(text, text)', 'execute')
    and has_function_privilege('service_role', 'public.erase_user(uuid)', 'execute')
    and has_function_privilege(
        'service_role', 'public.anonymize_inactive_users(integer, integer)', 'execute'
    ),
    'service_role may execute the four RPCs'
);

select * from finish();
rollback;
