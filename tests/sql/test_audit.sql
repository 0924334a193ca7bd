-- The audit trail (supabase/functions-sql/*_audit.sql): log_audit_event, the audit trigger that
-- private.enable_audit() attaches, the append-only guard and who may read system_audit_logs.
-- Runs as postgres on a fresh clone.
begin;
select plan(112);

-- Counts noted along the way, and the ids of the log rows a role could see (written by that
-- role through as_caller, asserted afterwards as postgres).
create temp table seen (note text primary key, n bigint not null);
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;
create temp table visible (note text not null, id bigint not null);
grant select, insert on pg_temp.seen, pg_temp.visible to anon, authenticated, service_role;

-- The template may have been migrated in an earlier month: make sure this month has its child.
do $$ begin perform private.maintain_partitions(); end $$;

-- log_audit_event: the happy path and the correlation id ------------------------------------------

-- As service_role, the one role meant to call it; the ids go through settings to the asserts.
set local role service_role;
do $$
begin
    perform set_config(
        'request.headers', '{"x-correlation-id": "corr-1", "x-request-id": "req-1"}', true
    );
    perform set_config('audit_test.full', public.log_audit_event(
        'user', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'profile.update', 'profile',
        '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', '{"fields": ["name"]}'
    )::text, true);
    perform set_config('request.headers', '{"x-request-id": "req-2"}', true);
    perform set_config('audit_test.request_id', public.log_audit_event(
        'service', 'billing', 'invoice.sent', 'invoice', '42'
    )::text, true);
    perform set_config('audit_test.explicit', public.log_audit_event(
        'system', null, 'cron.run', 'job', null, null, 'explicit-1'
    )::text, true);
    perform set_config('request.headers', '', true);
    perform set_config('audit_test.bare', public.log_audit_event(
        'admin', 'ops@example.com', 'flag.set', 'feature_flag'
    )::text, true);
end;
$$;
reset role;

select results_eq(
    $$select actor_type::text, actor_identifier, action::text, resource_type::text, resource_id,
             metadata::jsonb, correlation_id, old_data, new_data, changed_keys, txid, created_at
        from public.system_audit_logs
       where id = current_setting('audit_test.full')::bigint$$,
    $$values (
        'user', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'profile.update', 'profile',
        '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', '{"fields": ["name"]}'::jsonb,
        'corr-1', null::jsonb, null::jsonb, null::text[], txid_current(), now()
    )$$,
    'log_audit_event returns the id of a row holding the values given, this txid, at now()'
);
select results_eq(
    $$select actor_identifier, resource_id, metadata::jsonb, correlation_id
        from public.system_audit_logs
       where id = current_setting('audit_test.bare')::bigint$$,
    $$values ('ops@example.com', null::text, '{}'::jsonb, null::text)$$,
    'without the optional arguments and headers: no resource id, metadata {}, no correlation id'
);
select is(
    (
        select correlation_id from public.system_audit_logs
        where id = current_setting('audit_test.request_id')::bigint
    ),
    'req-2',
    'without x-correlation-id the correlation id is the x-request-id header'
);
select is(
    (
        select correlation_id from public.system_audit_logs
        where id = current_setting('audit_test.explicit')::bigint
    ),
    'explicit-1',
    'an explicit p_correlation_id wins over the headers'
);

-- log_audit_event: bad input is 22023 and stores nothing ------------------------------------------

insert into pg_temp.seen (note, n)
values ('before bad events', (select count(*) from public.system_audit_logs));

select throws_ok(
    $$select public.log_audit_event('robot', 'r2', 'beep', 'droid')$$,
    '22023',
    'log_audit_event: p_actor_type must be one of user, service, system, admin, anonymous, '
    || 'database (got ''robot'')',
    'log_audit_event refuses an unknown actor_type'
);
select throws_ok(
    $$select public.log_audit_event(null, 'r2', 'beep', 'droid')$$,
    '22023',
    'log_audit_event: p_actor_type must be one of user, service, system, admin, anonymous, '
    || 'database (got null)',
    'log_audit_event refuses a null actor_type'
);
select throws_ok(
    $$select public.log_audit_event('user', null, 'login', 'session')$$,
    '22023',
    'log_audit_event: p_actor_identifier must name the user when p_actor_type is user',
    'log_audit_event refuses a user event without the user'
);
select throws_ok(
    $$select public.log_audit_event('user', '  ', 'login', 'session')$$,
    '22023',
    'log_audit_event: p_actor_identifier must name the user when p_actor_type is user',
    'log_audit_event refuses a user event with a blank user'
);
select throws_ok(
    $$select public.log_audit_event('service', 'billing', '', 'invoice')$$,
    '22023',
    'log_audit_event: p_action must be 1 to 100 characters',
    'log_audit_event refuses an empty action'
);
select throws_ok(
    format(
        $$select public.log_audit_event('service', 'billing', %L, 'invoice')$$, repeat('a', 101)
    ),
    '22023',
    'log_audit_event: p_action must be 1 to 100 characters',
    'log_audit_event refuses an action of 101 characters'
);
select throws_ok(
    $$select public.log_audit_event('service', 'billing', 'invoice.sent', '')$$,
    '22023',
    'log_audit_event: p_resource_type must be 1 to 100 characters',
    'log_audit_event refuses an empty resource_type'
);
select throws_ok(
    $$select public.log_audit_event('service', 'billing', 'invoice.sent', 'invoice', '42', '[]')$$,
    '22023',
    'log_audit_event: p_metadata must be a JSON object, or null',
    'log_audit_event refuses metadata that is an array'
);
select throws_ok(
    $$select public.log_audit_event(
        'service', 'billing', 'invoice.sent', 'invoice', '42', '"paid"'
    )$$,
    '22023',
    'log_audit_event: p_metadata must be a JSON object, or null',
    'log_audit_event refuses metadata that is a string'
);
select is(
    (select count(*) from public.system_audit_logs),
    pg_temp.seen('before bad events'),
    'no refused log_audit_event call stored a row'
);

-- The audit trigger on a plain table --------------------------------------------------------------

-- Every secret holds "hunter2": no log row may contain it, whatever the path it took.
create table public.audit_probe (
    id integer primary key,
    owner_id uuid not null,
    secret text,
    note text
);
grant insert on public.audit_probe to anon, authenticated;

select lives_ok(
    $$select private.enable_audit('public.audit_probe', array['secret'])$$,
    'enable_audit attaches the audit trigger to a table'
);

do $$
begin
    perform set_config('request.headers', '{"x-correlation-id": "corr-trigger"}', true);
    insert into public.audit_probe (id, owner_id, secret, note)
    values (1, '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'hunter2-insert', 'first');
    perform set_config('request.headers', '', true);
    update public.audit_probe set note = 'second', secret = 'hunter2-update' where id = 1;
    update public.audit_probe set note = note where id = 1;
    delete from public.audit_probe where id = 1;
    insert into public.audit_probe (id, owner_id, secret, note)
    values (2, '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'hunter2-truncate', 'doomed');
    truncate public.audit_probe;
end;
$$;

select results_eq(
    $$select action::text, resource_type::text, resource_id, old_data, new_data, changed_keys
        from public.system_audit_logs
       where resource_type = 'public.audit_probe'
       order by id$$,
    $$values
        ('insert', 'public.audit_probe', '1', null::jsonb,
         '{"id": 1, "owner_id": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab",
           "secret": "[redacted]", "note": "first"}'::jsonb,
         null::text[]),
        ('update', 'public.audit_probe', '1',
         '{"id": 1, "owner_id": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab",
           "secret": "[redacted]", "note": "first"}',
         '{"id": 1, "owner_id": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab",
           "secret": "[redacted]", "note": "second"}',
         array['note', 'secret']),
        ('update', 'public.audit_probe', '1',
         '{"id": 1, "owner_id": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab",
           "secret": "[redacted]", "note": "second"}',
         '{"id": 1, "owner_id": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab",
           "secret": "[redacted]", "note": "second"}',
         array[]::text[]),
        ('delete', 'public.audit_probe', '1',
         '{"id": 1, "owner_id": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab",
           "secret": "[redacted]", "note": "second"}',
         null, null),
        ('insert', 'public.audit_probe', '2', null,
         '{"id": 2, "owner_id": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab",
           "secret": "[redacted]", "note": "doomed"}',
         null),
        ('truncate', 'public.audit_probe', null, null, null, null)$$,
    'insert, update, delete and truncate are logged with the rows, redacted, and the keys changed'
);
select results_eq(
    $$select distinct actor_type::text, actor_identifier, txid
        from public.system_audit_logs where resource_type = 'public.audit_probe'$$,
    $$values ('database', 'postgres', txid_current())$$,
    'without claims the actor is the database role, and each row carries the writing txid'
);
select is(
    (
        select array_agg(correlation_id order by id) from public.system_audit_logs
        where resource_type = 'public.audit_probe' and action = 'insert'
    ),
    array['corr-trigger', null],
    'the trigger takes the correlation id from the request headers'
);

-- The audit trigger on a partitioned table --------------------------------------------------------

create table public.audit_probe_events (
    id bigint not null,
    secret text,
    note text,
    created_at timestamptz not null default now(),
    primary key (id, created_at)
) partition by range (created_at);
insert into private.partitioned_tables (schema_name, table_name, premake_months, retention_months)
values ('public', 'audit_probe_events', 1, null);
do $$ begin perform private.maintain_partitions(); end $$;

select lives_ok(
    $$select private.enable_audit('public.audit_probe_events', array['secret'])$$,
    'enable_audit attaches the audit trigger to a partitioned table'
);
-- Statement triggers on the parent see every row routed to a child; a child can be truncated
-- on its own, so the default, this month and next month each get the truncate trigger.
select results_eq(
    $$select t.tgname::text collate "default", count(*)
        from private.partition_children('public.audit_probe_events') as c
        inner join pg_catalog.pg_trigger as t on c.child = t.tgrelid
       where t.tgname like 'audit%'
       group by t.tgname$$,
    $$values ('audit_truncate', 3::bigint)$$,
    'every child of the partitioned table has the truncate trigger, and no other audit trigger'
);

do $$
begin
    insert into public.audit_probe_events (id, secret, note)
    values (10, 'hunter2-event', 'now');
    insert into public.audit_probe_events (id, secret, note, created_at)
    values (11, 'hunter2-stray', 'far', now() + interval '5 years');
    update public.audit_probe_events set note = 'later' where id = 10;
    delete from public.audit_probe_events where id = 11;
end;
$$;

select is(
    (
        select tableoid::regclass::text from public.audit_probe_events
        where id = 10
    ),
    'partitions.' || tests.current_child('public.audit_probe_events'),
    'the probe row lives in this month''s child'
);
select results_eq(
    $$select action::text, resource_type::text, resource_id, changed_keys
        from public.system_audit_logs
       where resource_type like '%audit_probe_events%'
       order by id$$,
    $$values
        ('insert', 'public.audit_probe_events', '10', null::text[]),
        ('insert', 'public.audit_probe_events', '11', null),
        ('update', 'public.audit_probe_events', '10', array['note']),
        ('delete', 'public.audit_probe_events', '11', null)$$,
    'changes routed to a child are logged under the parent''s name'
);

-- Rows the partition manager moves out of the default partition are not changes.
insert into public.audit_probe_events (id, secret, note, created_at)
values (12, 'hunter2-moved', 'moved', date_trunc('month', now()) + interval '3 months');
insert into pg_temp.seen (note, n)
values ('before the move', (select count(*) from public.system_audit_logs));
do $$ begin perform private.maintain_partitions(now() + interval '3 months'); end $$;
select isnt(
    (
        select tableoid::regclass::text from public.audit_probe_events
        where id = 12
    ),
    'partitions.audit_probe_events_default',
    'the partition manager moved the stray row out of the default partition'
);
select is(
    (select count(*) from public.system_audit_logs),
    pg_temp.seen('before the move'),
    'the move was not logged'
);

do $$ begin truncate public.audit_probe_events; end $$;
select results_eq(
    $$select distinct resource_type::text, resource_id
        from public.system_audit_logs
       where resource_type like '%audit_probe_events%' and action = 'truncate'$$,
    $$values ('public.audit_probe_events', null::text)$$,
    'truncating the partitioned table is logged, under its name'
);

-- Truncating a child directly empties part of the table just as surely.
insert into public.audit_probe_events (id, secret, note) values (13, 'hunter2-child', 'child');
insert into pg_temp.seen (note, n)
values ('truncates so far', (
    select count(*) from public.system_audit_logs
    where resource_type = 'public.audit_probe_events' and action = 'truncate'
));
select lives_ok(
    format('truncate partitions.%I', tests.current_child('public.audit_probe_events')),
    'the owner truncates a child of the partitioned table'
);
select ok(
    (
        select count(*) from public.system_audit_logs
        where resource_type = 'public.audit_probe_events' and action = 'truncate'
    ) > pg_temp.seen('truncates so far'),
    'truncating a child of the partitioned table directly is logged too, under the parent''s name'
);
select is_empty(
    $$select id from public.system_audit_logs where resource_type like 'partitions.%'$$,
    'no log row names a child partition'
);

-- Statements of many rows ------------------------------------------------------------------------

-- One trigger call per statement: every row is still logged, and each row's old and new values
-- are paired, also when the first key column alone does not tell the rows apart.
create table public.audit_probe_wallets (
    user_id uuid not null,
    currency text not null,
    balance numeric not null,
    pin text,
    primary key (user_id, currency)
);
select lives_ok(
    $$select private.enable_audit('public.audit_probe_wallets', array['pin'])$$,
    'enable_audit attaches the audit triggers to a table with a two-column primary key'
);
do $$
begin
    insert into public.audit_probe_wallets (user_id, currency, balance, pin) values
        ('5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'RWF', 1000, 'hunter2-rwf'),
        ('5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'USD', 10, 'hunter2-usd'),
        ('c0ffee00-1111-4222-8333-444455556666', 'RWF', 500, 'hunter2-other');
    update public.audit_probe_wallets
    set balance = balance + case currency when 'RWF' then 1 else 2 end
    where user_id = '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab';
    update public.audit_probe_wallets set balance = balance where balance < 0;
    delete from public.audit_probe_wallets where currency = 'RWF';
end;
$$;
select results_eq(
    $$select action::text, resource_id, old_data ->> 'currency', old_data ->> 'balance',
             new_data ->> 'currency', new_data ->> 'balance', new_data ->> 'pin', changed_keys
        from public.system_audit_logs
       where resource_type = 'public.audit_probe_wallets'
       order by action, coalesce(new_data, old_data) ->> 'user_id',
                coalesce(new_data, old_data) ->> 'currency'$$,
    $$values
        ('delete', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'RWF', '1001', null, null, null,
         null::text[]),
        ('delete', 'c0ffee00-1111-4222-8333-444455556666', 'RWF', '500', null, null, null, null),
        ('insert', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', null, null, 'RWF', '1000',
         '[redacted]', null),
        ('insert', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', null, null, 'USD', '10',
         '[redacted]', null),
        ('insert', 'c0ffee00-1111-4222-8333-444455556666', null, null, 'RWF', '500',
         '[redacted]', null),
        ('update', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'RWF', '1000', 'RWF', '1001',
         '[redacted]', array['balance']),
        ('update', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'USD', '10', 'USD', '12',
         '[redacted]', array['balance'])$$,
    'each row of a many-row statement is logged; an update pairs each row''s old and new values'
);
select is_empty(
    $$select id from public.system_audit_logs as l where l::text like '%hunter2%'$$,
    'no many-row statement leaked a redacted value'
);

-- An upsert is an insert or an update, and is logged as the one it was.
do $$
begin
    insert into public.audit_probe_wallets (user_id, currency, balance) values
        ('5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'USD', 5),
        ('5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'EUR', 7)
    on conflict (user_id, currency) do update set balance = excluded.balance;
end;
$$;
select results_eq(
    $$select action::text, new_data ->> 'currency', old_data ->> 'balance', new_data ->> 'balance'
        from public.system_audit_logs
       where resource_type = 'public.audit_probe_wallets' and id > (
           select max(l.id) from public.system_audit_logs as l
           where l.resource_type = 'public.audit_probe_wallets' and l.action = 'delete'
       )
       order by action$$,
    $$values ('insert', 'EUR', null, '7'), ('update', 'USD', '12', '5')$$,
    'an upsert logs the row it inserted as an insert and the row it updated as an update'
);

-- A row whose key changed is paired with its old values too.
do $$
begin
    update public.audit_probe_wallets
    set currency = case currency when 'EUR' then 'GBP' else currency end, balance = balance + 1
    where user_id = '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab';
end;
$$;
select results_eq(
    $$select old_data ->> 'currency', old_data ->> 'balance', new_data ->> 'currency',
             new_data ->> 'balance', changed_keys
        from public.system_audit_logs
       where resource_type = 'public.audit_probe_wallets' and action = 'update'
         and new_data ->> 'balance' in ('6', '8')
       order by old_data ->> 'currency'$$,
    $$values ('EUR', '7', 'GBP', '8', array['balance', 'currency']),
             ('USD', '5', 'USD', '6', array['balance'])$$,
    'an update that changes one row''s key pairs that row too, and the others'
);

-- Moving a row to another month's child is an update of the partitioned table.
insert into public.audit_probe_events (id, secret, note) values (14, 'hunter2-mover', 'mover');
do $$
begin
    update public.audit_probe_events set created_at = created_at + interval '1 month'
    where id = 14;
end;
$$;
select results_eq(
    $$select action::text, changed_keys
        from public.system_audit_logs
       where resource_type = 'public.audit_probe_events' and resource_id = '14'
       order by id$$,
    $$values ('insert', null::text[]), ('update', array['created_at'])$$,
    'an update that moves a row to another child is logged as one update'
);

-- A statement that touches no row logs nothing.
insert into pg_temp.seen (note, n)
values ('before no-row statements', (select count(*) from public.system_audit_logs));
do $$
begin
    update public.audit_probe_wallets set balance = 0 where currency = 'JPY';
    delete from public.audit_probe_wallets where currency = 'JPY';
    insert into public.audit_probe_wallets (user_id, currency, balance)
    select user_id, currency, balance from public.audit_probe_wallets where false;
end;
$$;
select is(
    (select count(*) from public.system_audit_logs),
    pg_temp.seen('before no-row statements'),
    'statements that change no row write no audit row'
);

-- What enable_audit refuses --------------------------------------------------------------------

create table public.audit_probe_keyless (code text, secret text);
select throws_ok(
    $$select private.enable_audit('public.audit_probe_keyless')$$,
    '22023',
    'enable_audit: public.audit_probe_keyless has no primary key or id column to tell its rows '
    || 'apart',
    'enable_audit refuses a table whose rows it could not tell apart'
);
select throws_ok(
    format(
        'select private.enable_audit(%L)',
        'partitions.' || tests.current_child('public.audit_probe_events')
    ),
    '22023',
    format(
        'enable_audit: partitions.%s is a partition; audit its partitioned table',
        tests.current_child('public.audit_probe_events')
    ),
    'enable_audit refuses a partition: changes reach it through its parent'
);

-- The log's own rules ----------------------------------------------------------------------------

select throws_ok(
    $$insert into public.system_audit_logs (actor_type, action, resource_type)
      values ('robot', 'probe', 'probe')$$,
    '23514',
    null,
    'the log refuses an unknown actor type, also from its owner'
);
select throws_ok(
    $$insert into public.system_audit_logs (actor_type, action, resource_type)
      values ('system', '', 'probe')$$,
    '23514',
    null,
    'the log refuses an empty action'
);
select throws_ok(
    $$insert into public.system_audit_logs (actor_type, action, resource_type)
      values ('system', 'probe', repeat('r', 101))$$,
    '23514',
    null,
    'the log refuses a resource type over 100 characters'
);
select throws_ok(
    $$insert into public.system_audit_logs (actor_type, action, resource_type, metadata)
      values ('system', 'probe', 'probe', '[]')$$,
    '23514',
    null,
    'the log refuses metadata that is not an object'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into public.system_audit_logs (actor_type, action, resource_type, metadata)'
        ' values (''service'', ''probe.direct'', ''probe'', ''{"k": 1}'')'
    )$$,
    'service_role inserts a valid row directly (the columns'' domains are usable by it)'
);

-- Switching the audit off ------------------------------------------------------------------------

-- The partition manager's setting is settable by anyone; alone it lets nothing through.
select lives_ok(
    $$select tests.as_caller(
        'service_role',
        '{"role": "service_role"}',
        'select set_config(''easymo.partition_maintenance'', ''on'', true);'
        ' insert into public.audit_probe (id, owner_id, secret)'
        ' values (19, ''5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab'', ''hunter2-sneaky'');'
        ' select set_config(''easymo.partition_maintenance'', ''off'', true)'
    )$$,
    'service_role turns the partition manager''s setting on and writes'
);
select is(
    (
        select count(*) from public.system_audit_logs
        where resource_id = '19' and action = 'insert' and actor_type = 'service'
    ),
    1::bigint,
    'the write is audited all the same: the setting is not enough to pass for the manager'
);
select throws_ok(
    $$select tests.as_role(
        'service_role', 'insert into private.partition_moves (txid) values (txid_current())'
    )$$,
    '42501',
    'permission denied for schema private',
    'and service_role cannot mark its transaction as a partition move'
);

-- The actor ---------------------------------------------------------------------------------------

select lives_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
        'insert into public.audit_probe (id, owner_id, secret)'
        ' values (20, ''5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab'', ''hunter2-user'')'
    )$$,
    'an authenticated user writes to an audited table'
);
select lives_ok(
    $$select tests.as_caller(
        'service_role',
        '{"role": "service_role"}',
        'insert into public.audit_probe (id, owner_id, secret)'
        ' values (21, ''5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab'', ''hunter2-service'')'
    )$$,
    'service_role writes to an audited table'
);
select lives_ok(
    $$select tests.as_caller(
        'anon',
        '{"role": "anon"}',
        'insert into public.audit_probe (id, owner_id, secret)'
        ' values (22, ''5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab'', ''hunter2-anon'')'
    )$$,
    'anon writes to an audited table'
);
insert into public.audit_probe (id, owner_id, secret)
values (23, '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'hunter2-postgres');
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into public.audit_probe (id, owner_id, secret)'
        ' values (24, ''5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab'', ''hunter2-set-role'')'
    )$$,
    'service_role without claims (a SET ROLE session) writes to an audited table'
);

select results_eq(
    $$select resource_id, actor_type::text, actor_identifier
        from public.system_audit_logs
       where resource_type = 'public.audit_probe' and resource_id in ('20', '21', '22', '23', '24')
       order by resource_id$$,
    $$values
        ('20', 'user', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab'),
        ('21', 'service', 'service_role'),
        ('22', 'anonymous', null),
        ('23', 'database', 'postgres'),
        ('24', 'database', 'service_role')$$,
    'the actor is the user, the service, anonymous, or the database role in effect'
);
-- private.request_actor() (erase_user's) names callers as the trigger does. API roles cannot
-- reach private, so the claims are set here, as postgres.
create function pg_temp.actor_for(p_claims text)
returns table (actor_type text, actor_identifier text)
language plpgsql
as $$
begin
    perform set_config('request.jwt.claims', p_claims, true);
    return query select a.actor_type, a.actor_identifier from private.request_actor() as a;
    perform set_config('request.jwt.claims', '', true);
end;
$$;
select results_eq(
    $$select c.claims, a.actor_type, a.actor_identifier
        from (values
            ('{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}'),
            ('{"role": "service_role"}'),
            ('{"role": "anon"}'),
            ('')
        ) as c (claims)
        cross join lateral pg_temp.actor_for(c.claims) as a
       order by c.claims$$,
    $$values
        ('', 'database', 'postgres'),
        ('{"role": "anon"}', 'anonymous', null::text),
        ('{"role": "service_role"}', 'service', 'service_role'),
        ('{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}', 'user',
         '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab')$$,
    'private.request_actor() names the user, the service, anonymous and the database role as '
    || 'the trigger does'
);

select is_empty(
    $$select id from public.system_audit_logs as l where l::text like '%hunter2%'$$,
    'no log row holds a redacted value, in any column'
);
select is(
    (
        select count(*) from public.audit_probe
        where secret like 'hunter2-%'
    ),
    6::bigint,
    'while the audited table does hold them'
);

-- enable_audit and disable_audit ------------------------------------------------------------------

create table public.audit_probe_plain (code text primary key, secret text);
create view public.audit_probe_view as
select
    id,
    note
from public.audit_probe;

-- A misspelt column would leave its secret in the log.
select throws_ok(
    $$select private.enable_audit('public.audit_probe_plain', array['secret', 'pasword'])$$,
    '22023',
    'enable_audit: public.audit_probe_plain has no column pasword to redact',
    'enable_audit refuses a redact column the table does not have'
);
select is_empty(
    $$select tgname from pg_catalog.pg_trigger
      where tgrelid = 'public.audit_probe_plain'::regclass$$,
    'the refused enable_audit created no trigger'
);
select throws_ok(
    $$select private.enable_audit('public.system_audit_logs')$$,
    '22023',
    'enable_audit: the audit log cannot audit itself',
    'enable_audit refuses the audit log itself'
);
select throws_ok(
    $$select private.enable_audit('public.audit_probe_view')$$,
    '22023',
    'enable_audit: public.audit_probe_view is not a table',
    'enable_audit refuses a view'
);
select throws_ok(
    $$select private.enable_audit(null)$$,
    '22023',
    null,
    'enable_audit refuses a null table'
);
-- A partition of the audit log is the audit log: on this month's child every log row would
-- log itself until the stack ran out. The default partition is asked here, so that should the
-- refusal be missing, the sections below still run.
select throws_ok(
    $$select private.enable_audit('partitions.system_audit_logs_default')$$,
    '22023',
    null,
    'enable_audit refuses a partition of the audit log'
);
select is_empty(
    $$select t.tgname from pg_catalog.pg_trigger as t
      where t.tgname like 'audit%'
        and t.tgrelid in (
            select c.child from private.partition_children('public.system_audit_logs') as c
            union all
            select 'public.system_audit_logs'::regclass
        )$$,
    'the audit log and its partitions have no audit trigger'
);
-- Should the refusal above be missing, keep its trigger from spilling into the sections below.
do $$ begin perform private.disable_audit('partitions.system_audit_logs_default'); end $$;

select lives_ok(
    $$select private.enable_audit('public.audit_probe', array['secret', 'note'])$$,
    'enable_audit runs again on an audited table'
);
select results_eq(
    $$select tgname::text collate "default" from pg_catalog.pg_trigger
      where tgrelid = 'public.audit_probe'::regclass order by tgname$$,
    $$values ('audit_delete'), ('audit_insert'), ('audit_truncate'), ('audit_update')$$,
    'enable_audit run twice leaves one trigger for each kind of change'
);
insert into public.audit_probe (id, owner_id, secret, note)
values (30, '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'hunter2-again', 'now hidden');
select is(
    (
        select new_data from public.system_audit_logs
        where resource_type = 'public.audit_probe' and resource_id = '30'
    ),
    '{"id": 30, "owner_id": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab",
      "secret": "[redacted]", "note": "[redacted]"}'::jsonb,
    'the second enable_audit''s settings replaced the first''s'
);

select lives_ok(
    $$select private.disable_audit('public.audit_probe')$$,
    'disable_audit runs'
);
insert into pg_temp.seen (note, n)
values ('after disable_audit', (select count(*) from public.system_audit_logs));
do $$
begin
    insert into public.audit_probe (id, owner_id, secret) values (31, gen_random_uuid(), 'x');
    update public.audit_probe set note = 'unlogged' where id = 31;
    delete from public.audit_probe where id = 31;
    truncate public.audit_probe;
end;
$$;
select is(
    (select count(*) from public.system_audit_logs),
    pg_temp.seen('after disable_audit'),
    'after disable_audit no change to the table is logged'
);
select is_empty(
    $$select tgname from pg_catalog.pg_trigger
      where tgrelid = 'public.audit_probe'::regclass$$,
    'disable_audit removed every audit trigger'
);

-- Who reads the log -------------------------------------------------------------------------------

-- A's events, someone else's about A (not A's to read), and B's.
do $$
begin
    perform public.log_audit_event(
        'user', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'login', 'session'
    );
    perform public.log_audit_event(
        'admin', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'user.suspend', 'user'
    );
    perform public.log_audit_event(
        'service', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'sync', 'user'
    );
    perform public.log_audit_event(
        'user', 'c0ffee00-1111-4222-8333-444455556666', 'login', 'session'
    );
end;
$$;

select ok(
    (
        select relrowsecurity from pg_catalog.pg_class
        where oid = 'public.system_audit_logs'::regclass
    ),
    'system_audit_logs has row level security enabled'
);
select is_empty(
    $$select c.child from private.partition_children('public.system_audit_logs') as c
      inner join pg_catalog.pg_class as r on c.child = r.oid
      where not r.relrowsecurity$$,
    'every child of system_audit_logs has row level security enabled'
);
select table_privs_are(
    'public', 'system_audit_logs', 'anon', array[]::name[],
    'anon has no privilege on system_audit_logs'
);
select table_privs_are(
    'public', 'system_audit_logs', 'authenticated', array['SELECT'],
    'authenticated may only select from system_audit_logs'
);
select table_privs_are(
    'public', 'system_audit_logs', 'service_role', array['SELECT', 'INSERT'],
    'service_role may only select and insert on system_audit_logs'
);

select lives_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
        'insert into pg_temp.visible select ''A'', id from public.system_audit_logs'
    )$$,
    'an authenticated user reads system_audit_logs'
);
select ok(
    (
        select count(*) from pg_temp.visible
        where note = 'A'
    ) >= 3,
    'user A sees A''s events (the profile update, the login, the audited write)'
);
select set_eq(
    $$select id from pg_temp.visible where note = 'A'$$,
    $$select id from public.system_audit_logs
      where actor_type = 'user' and actor_identifier = '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab'$$,
    'user A sees exactly the rows where A is the acting user'
);
select lives_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "c0ffee00-1111-4222-8333-444455556666", "role": "authenticated"}',
        'insert into pg_temp.visible select ''B'', id from public.system_audit_logs'
    )$$,
    'a second authenticated user reads system_audit_logs'
);
select set_eq(
    $$select id from pg_temp.visible where note = 'B'$$,
    $$select id from public.system_audit_logs
      where actor_type = 'user' and actor_identifier = 'c0ffee00-1111-4222-8333-444455556666'$$,
    'user B sees exactly B''s own rows, none of A''s'
);
select throws_ok(
    $$select tests.as_caller(
        'anon', '{"role": "anon"}', 'select count(*) from public.system_audit_logs'
    )$$,
    '42501',
    'permission denied for table system_audit_logs',
    'anon reading system_audit_logs is refused'
);
select lives_ok(
    $$select tests.as_caller(
        'service_role',
        '{"role": "service_role"}',
        'insert into pg_temp.seen select ''service_role'', count(*) from public.system_audit_logs'
    )$$,
    'service_role reads system_audit_logs'
);
select is(
    pg_temp.seen('service_role'),
    (select count(*) from public.system_audit_logs),
    'service_role sees every row'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
        'insert into public.system_audit_logs (actor_type, actor_identifier, action, resource_type)'
        ' values (''user'', ''5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab'', ''forged'', ''session'')'
    )$$,
    '42501',
    'permission denied for table system_audit_logs',
    'authenticated cannot write system_audit_logs, not even about itself'
);
select throws_ok(
    $$select tests.as_caller(
        'anon',
        '{"role": "anon"}',
        'insert into public.system_audit_logs (actor_type, action, resource_type)'
        ' values (''anonymous'', ''forged'', ''session'')'
    )$$,
    '42501',
    'permission denied for table system_audit_logs',
    'anon cannot write system_audit_logs'
);
select throws_ok(
    format(
        $$select tests.as_caller(
            'authenticated',
            '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
            'select count(*) from partitions.%I'
        )$$,
        tests.current_child('public.system_audit_logs')
    ),
    '42501',
    'permission denied for schema partitions',
    'authenticated cannot read this month''s child of system_audit_logs'
);
select throws_ok(
    format(
        $$select tests.as_role('service_role', 'select count(*) from partitions.%I')$$,
        tests.current_child('public.system_audit_logs')
    ),
    '42501',
    'permission denied for schema partitions',
    'service_role cannot read this month''s child of system_audit_logs'
);
select throws_ok(
    $$select tests.as_role(
        'authenticated', 'select count(*) from partitions.system_audit_logs_default'
    )$$,
    '42501',
    'permission denied for schema partitions',
    'authenticated cannot read the default partition of system_audit_logs'
);

-- Append-only -------------------------------------------------------------------------------------

-- A row in the default partition too, so the row triggers there have something to refuse.
select lives_ok(
    $$insert into public.system_audit_logs (actor_type, action, resource_type, created_at)
      values ('system', 'far.future', 'probe', now() + interval '10 years')$$,
    'the owner inserts a row that lands in the default partition'
);
insert into pg_temp.seen (note, n)
values ('before tampering', (select count(*) from public.system_audit_logs));

select throws_ok(
    $$select tests.as_role(
        'service_role', 'update public.system_audit_logs set action = ''tampered'''
    )$$,
    '42501',
    'permission denied for table system_audit_logs',
    'service_role may not update the log'
);
select throws_ok(
    $$select tests.as_role('service_role', 'delete from public.system_audit_logs')$$,
    '42501',
    'permission denied for table system_audit_logs',
    'service_role may not delete from the log'
);
select throws_ok(
    $$select tests.as_role('service_role', 'truncate public.system_audit_logs')$$,
    '42501',
    'permission denied for table system_audit_logs',
    'service_role may not truncate the log'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
        'update public.system_audit_logs set action = ''tampered'''
    )$$,
    '42501',
    'permission denied for table system_audit_logs',
    'authenticated may not update the log, not even its own rows'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
        'delete from public.system_audit_logs'
    )$$,
    '42501',
    'permission denied for table system_audit_logs',
    'authenticated may not delete from the log, not even its own rows'
);

select throws_ok(
    $$update public.system_audit_logs set action = 'tampered'$$,
    '42501',
    'system_audit_logs is append-only: update is not allowed',
    'the owner may not update the log'
);
select throws_ok(
    $$delete from public.system_audit_logs$$,
    '42501',
    'system_audit_logs is append-only: delete is not allowed',
    'the owner may not delete from the log'
);
select throws_ok(
    $$truncate public.system_audit_logs$$,
    '42501',
    'system_audit_logs is append-only: truncate is not allowed',
    'the owner may not truncate the log'
);
select throws_ok(
    format(
        $$update partitions.%I set action = 'tampered'$$,
        tests.current_child('public.system_audit_logs')
    ),
    '42501',
    'system_audit_logs is append-only: update is not allowed',
    'the owner may not update this month''s child directly'
);
select throws_ok(
    format('delete from partitions.%I', tests.current_child('public.system_audit_logs')),
    '42501',
    'system_audit_logs is append-only: delete is not allowed',
    'the owner may not delete from this month''s child directly'
);
select throws_ok(
    $$update partitions.system_audit_logs_default set action = 'tampered'$$,
    '42501',
    'system_audit_logs is append-only: update is not allowed',
    'the owner may not update the default partition directly'
);
select throws_ok(
    $$delete from partitions.system_audit_logs_default$$,
    '42501',
    'system_audit_logs is append-only: delete is not allowed',
    'the owner may not delete from the default partition directly'
);
select results_eq(
    $$select count(*), count(*) filter (where action = 'tampered')
        from public.system_audit_logs$$,
    $$values (pg_temp.seen('before tampering'), 0::bigint)$$,
    'every refused change left the log as it was'
);
-- Last in this section: should it not be refused, it empties this month's child.
select throws_ok(
    format('truncate partitions.%I', tests.current_child('public.system_audit_logs')),
    '42501',
    'system_audit_logs is append-only: truncate is not allowed',
    'the owner may not truncate this month''s child directly'
);

-- Who may call log_audit_event, and the private helpers -------------------------------------------

select function_privs_are(
    'public', 'log_audit_event',
    array['text', 'text', 'text', 'text', 'text', 'jsonb', 'text'],
    'service_role', array['EXECUTE'],
    'service_role may execute log_audit_event'
);
select function_privs_are(
    'public', 'log_audit_event',
    array['text', 'text', 'text', 'text', 'text', 'jsonb', 'text'],
    'anon', array[]::name[],
    'anon may not execute log_audit_event'
);
select function_privs_are(
    'public', 'log_audit_event',
    array['text', 'text', 'text', 'text', 'text', 'jsonb', 'text'],
    'authenticated', array[]::name[],
    'authenticated may not execute log_audit_event'
);
select function_privs_are(
    'public', 'log_audit_event',
    array['text', 'text', 'text', 'text', 'text', 'jsonb', 'text'],
    'analyst', array[]::name[],
    'analyst may not execute log_audit_event'
);
select throws_ok(
    $$select tests.as_role(
        'anon', 'select public.log_audit_event(''anonymous'', null, ''forged'', ''session'')'
    )$$,
    '42501',
    'permission denied for function log_audit_event',
    'anon calling log_audit_event is refused'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
        'select public.log_audit_event('
        '''user'', ''5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab'', ''forged'', ''session'')'
    )$$,
    '42501',
    'permission denied for function log_audit_event',
    'authenticated calling log_audit_event is refused'
);
select ok(
    not has_function_privilege('service_role', 'private.enable_audit(regclass, text[])', 'execute')
    and not has_function_privilege(
        'authenticated', 'private.enable_audit(regclass, text[])', 'execute'
    )
    and not has_function_privilege('service_role', 'private.disable_audit(regclass)', 'execute'),
    'only the owner may switch auditing on or off'
);

-- Definer's rights write past RLS; a pinned search_path keeps callers' objects out of them.
select is_definer(
    'public', 'log_audit_event',
    array['text', 'text', 'text', 'text', 'text', 'jsonb', 'text'],
    'log_audit_event is security definer'
);
select is_definer('private', 'audit_row', array[]::name[], 'audit_row is security definer');
select results_eq(
    $$select p.oid::regprocedure::text, p.proconfig collate "default"
        from pg_catalog.pg_proc as p
       where p.oid in (
           'public.log_audit_event(text, text, text, text, text, jsonb, text)'::regprocedure,
           'private.audit_row()'::regprocedure
       )
       order by 1$$,
    $$values
        ('log_audit_event(text,text,text,text,text,jsonb,text)', array['search_path=""']),
        ('private.audit_row()', array['search_path=""'])$$,
    'log_audit_event and audit_row pin search_path to empty'
);

-- Comments ----------------------------------------------------------------------------------------

select ok(
    coalesce(obj_description('public.system_audit_logs'::regclass, 'pg_class'), '') <> '',
    'system_audit_logs has a comment'
);
select ok(
    coalesce(obj_description(
        'public.log_audit_event(text, text, text, text, text, jsonb, text)'::regprocedure,
        'pg_proc'
    ), '') <> '',
    'log_audit_event has a comment'
);
select is_empty(
    $$select p.proname from pg_catalog.pg_proc as p
      where p.oid in (
          'private.audit_row()'::regprocedure,
          'private.enable_audit(regclass, text[])'::regprocedure,
          'private.disable_audit(regclass)'::regprocedure,
          'private.refuse_audit_change()'::regprocedure,
          'private.request_correlation_id()'::regprocedure
      )
      and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''$$,
    'the private audit functions have comments'
);

select * from finish();
rollback;
