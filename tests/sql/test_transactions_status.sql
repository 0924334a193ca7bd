-- update_transaction_status (functions-sql's transactions file): every legal move with its event
-- and outbox event, every other move refused, the current status again a no-op, and its bad
-- input.
-- Runs as postgres on a fresh clone in one transaction: now() is constant, so every transaction
-- here is created (and moved) at now(). The users, notes and helpers are tests/sql/fixtures/
-- transactions.sql.
begin;
select plan(47);

call tests.fixture('transactions');

-- update_transaction_status: the legal moves -----------------------------------------------------

-- EUR credits of Aline's, moved by a service named in the claims.
select is(
    pg_temp.make('sm completes', 'aline', 'credit', 10.00, 'EUR')::text
    || pg_temp.make('sm cancelled', 'aline', 'credit', 20.00, 'EUR')::text
    || pg_temp.make('sm declined', 'aline', 'credit', 30.00, 'EUR')::text
    || pg_temp.make('sm times out', 'aline', 'credit', 40.00, 'EUR')::text,
    pg_temp.txn('sm completes')::text || pg_temp.txn('sm cancelled')
    || pg_temp.txn('sm declined') || pg_temp.txn('sm times out'),
    'four pending EUR credits to move'
);

create temp table moved (step integer primary key, note text not null, like public.transactions);
grant select, insert on pg_temp.moved to service_role;

-- Each step: the transaction, the status, the error and the reason update_transaction_status is
-- called with, as service ops-1.
create temp table steps (
    step integer primary key,
    note text not null,
    new_status text not null,
    error_message text,
    reason text
);
insert into pg_temp.steps (step, note, new_status, error_message, reason) values
(1, 'sm completes', 'processing', null, 'picked up'),
(2, 'sm completes', 'completed', null, null),
(3, 'sm completes', 'reversed', null, 'chargeback'),
(4, 'sm cancelled', 'cancelled', null, 'customer cancelled'),
(5, 'sm declined', 'failed', 'card declined', null),
(6, 'sm times out', 'processing', 'slow start', null),
(7, 'sm times out', 'failed', 'timeout', 'provider timeout');

select
    lives_ok(
        format(
            'select tests.as_caller(%L, %L, %L)',
            'service_role',
            '{"role": "service_role", "sub": "ops-1"}',
            string_agg(
                format(
                    'insert into pg_temp.moved select %s, %L, t.* '
                    || 'from public.update_transaction_status(%L, %L, %L, %L) as t',
                    s.step, s.note, pg_temp.txn(s.note), s.new_status, s.error_message, s.reason
                ),
                '; ' order by s.step
            )
        ),
        'service_role moves the credits'
    )
from pg_temp.steps as s;
select results_eq(
    $$select step, status::text, error_message, completed_at, updated_at = now()
        from pg_temp.moved order by step$$,
    $$values
        (1, 'processing', null::text, null::timestamptz, true),
        (2, 'completed', null, now(), true),
        (3, 'reversed', null, now(), true),
        (4, 'cancelled', null, null, true),
        (5, 'failed', 'card declined', null, true),
        (6, 'processing', null, null, true),
        (7, 'failed', 'timeout', null, true)$$,
    'each move returns the transaction in its new status: completed sets completed_at (kept when '
    || 'reversed), a failure keeps its error message, another move does not'
);
select is_empty(
    $$select m.id, m.status, m.error_message, m.completed_at from pg_temp.moved as m
       where m.step in (3, 4, 5, 7)
      except
      select t.id, t.status, t.error_message, t.completed_at from public.transactions as t$$,
    'and public.transactions holds the final state of each'
);
select results_eq(
    $$select m.note, e.from_status, e.to_status, e.actor_type, e.actor_id, e.reason
        from public.transaction_events as e
        inner join pg_temp.made as m on e.transaction_id = m.id
       where m.note like 'sm %' and e.from_status is not null
       order by e.id$$,
    $$values
        ('sm completes', 'pending'::text, 'processing'::text, 'service'::text, 'ops-1'::text,
         'picked up'::text),
        ('sm completes', 'processing', 'completed', 'service', 'ops-1', null),
        ('sm completes', 'completed', 'reversed', 'service', 'ops-1', 'chargeback'),
        ('sm cancelled', 'pending', 'cancelled', 'service', 'ops-1', 'customer cancelled'),
        ('sm declined', 'pending', 'failed', 'service', 'ops-1', 'card declined'),
        ('sm times out', 'pending', 'processing', 'service', 'ops-1', 'slow start'),
        ('sm times out', 'processing', 'failed', 'service', 'ops-1', 'provider timeout')$$,
    'each move writes a transaction_events row: from, to, the service and the reason (else the '
    || 'error)'
);
select results_eq(
    $$select o.event_type, o.payload
        from public.outbox_events as o
       where o.aggregate_id in (
                 select m.id::text from pg_temp.made as m where m.note like 'sm %'
             )
         and o.event_type <> 'transaction.created'
       order by o.id$$,
    $$values
        ('transaction.processing'::text,
         pg_temp.payload('sm completes', 'pending', 'processing', 'picked up')),
        ('transaction.completed', pg_temp.payload('sm completes', 'processing', 'completed')),
        ('transaction.reversed',
         pg_temp.payload('sm completes', 'completed', 'reversed', 'chargeback')),
        ('transaction.cancelled',
         pg_temp.payload('sm cancelled', 'pending', 'cancelled', 'customer cancelled')),
        ('transaction.failed',
         pg_temp.payload('sm declined', 'pending', 'failed', 'card declined')),
        ('transaction.processing',
         pg_temp.payload('sm times out', 'pending', 'processing', 'slow start')),
        ('transaction.failed',
         pg_temp.payload('sm times out', 'processing', 'failed', 'provider timeout'))$$,
    'each move emits the outbox event transaction.<status>'
);
select is(
    public.get_wallet_balance(pg_temp.uid('aline'), 'EUR'), 0.00,
    'the EUR credit completed and reversed leaves the wallet at 0'
);

-- update_transaction_status: every other move ----------------------------------------------------

-- One EUR credit in each status.
select is(
    pg_temp.make('in pending', 'aline', 'credit', 1, 'EUR')::text
    || pg_temp.make('in processing', 'aline', 'credit', 2, 'EUR')::text
    || pg_temp.make('in completed', 'aline', 'credit', 3, 'EUR')::text
    || pg_temp.make('in failed', 'aline', 'credit', 4, 'EUR')::text
    || pg_temp.make('in cancelled', 'aline', 'credit', 5, 'EUR')::text
    || pg_temp.make('in reversed', 'aline', 'credit', 6, 'EUR')::text
    || pg_temp.move('in processing', 'processing')
    || pg_temp.move('in completed', 'processing', 'completed')
    || pg_temp.move('in failed', 'failed')
    || pg_temp.move('in cancelled', 'cancelled')
    || pg_temp.move('in reversed', 'processing', 'completed', 'reversed'),
    (
        select string_agg(pg_temp.txn('in ' || s)::text, '' order by n)
        from unnest(array[
            'pending', 'processing', 'completed', 'failed', 'cancelled', 'reversed'
        ]) with ordinality as a (s, n)
    )
    || 'processingcompletedfailedcancelledreversed',
    'six EUR credits, one in each status'
);

create temp table matrix_before as
select to_jsonb(t) as row_data
from public.transactions as t
where t.id in (
    select m.id from pg_temp.made as m
    where m.note like 'in %'
);
insert into pg_temp.seen (note, n)
select
    'matrix events' as note,
    count(*) as n
from public.transaction_events
where transaction_id in (
    select m.id from pg_temp.made as m
    where m.note like 'in %'
);
insert into pg_temp.seen (note, n)
select
    'matrix outbox' as note,
    count(*) as n
from public.outbox_events
where aggregate_id in (
    select m.id::text from pg_temp.made as m
    where m.note like 'in %'
);

-- The 24 moves outside the state machine, each refused with what the status may become.
select
    throws_ok(
        format(
            'select public.update_transaction_status(%L, %L)',
            pg_temp.txn('in ' || f.status),
            t.status
        ),
        'PT409',
        format(
            'update_transaction_status: %s is %s, it cannot become %s (%s)',
            pg_temp.ref('in ' || f.status), f.status, t.status, f.allowed
        ),
        format('%s cannot become %s', f.status, t.status)
    )
from (
    values
    (1, 'pending', 'it may become processing or cancelled or failed'),
    (2, 'processing', 'it may become completed or failed'),
    (3, 'completed', 'it may become reversed'),
    (4, 'failed', 'it is final'),
    (5, 'cancelled', 'it is final'),
    (6, 'reversed', 'it is final')
) as f (n, status, allowed)
cross join (
    values
    (1, 'pending'), (2, 'processing'), (3, 'completed'), (4, 'failed'), (5, 'cancelled'),
    (6, 'reversed')
) as t (n, status)
where
    f.status <> t.status
    and (f.status, t.status) not in (
        ('pending', 'processing'), ('pending', 'cancelled'), ('pending', 'failed'),
        ('processing', 'completed'), ('processing', 'failed'), ('completed', 'reversed')
    )
order by f.n, t.n;

-- The current status again: the transaction as it is.
select
    is(
        (select t.status::text from public.update_transaction_status(
            pg_temp.txn('in ' || s.status), s.status, 'ignored', 'ignored'
        ) as t),
        s.status,
        format('%s again is a no-op', s.status)
    )
from (
    values
    (1, 'pending'), (2, 'processing'), (3, 'completed'), (4, 'failed'), (5, 'cancelled'),
    (6, 'reversed')
) as s (n, status)
order by s.n;

select results_eq(
    $$select to_jsonb(t) from public.transactions as t
       where t.id in (select m.id from pg_temp.made as m where m.note like 'in %')
       order by t.id$$,
    $$select row_data from pg_temp.matrix_before order by (row_data ->> 'id')::uuid$$,
    'the refused moves and the no-ops left the six rows as they were'
);
select results_eq(
    $$select
        (select count(*) from public.transaction_events
          where transaction_id in (select m.id from pg_temp.made as m where m.note like 'in %')),
        (select count(*) from public.outbox_events
          where aggregate_id in (
                    select m.id::text from pg_temp.made as m where m.note like 'in %'
                ))$$,
    $$values (pg_temp.seen('matrix events')::bigint, pg_temp.seen('matrix outbox')::bigint)$$,
    'and wrote no event and no outbox event'
);
select is(
    public.get_wallet_balance(pg_temp.uid('aline'), 'EUR'), 3.00,
    'the EUR wallet holds only the completed credit of 3'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.uid('nobody'), 'processing'
    ),
    'PT404', 'update_transaction_status: no transaction 99999999-9999-4999-8999-999999999999',
    'an unknown transaction is not found'
);
select throws_ok(
    format('select public.update_transaction_status(%L, %L)', pg_temp.txn('in pending'), 'done'),
    '22023',
    'update_transaction_status: p_new_status must be pending, processing, completed, failed, '
    || 'cancelled or reversed (got done)',
    'an unknown status is refused'
);
select throws_ok(
    format('select public.update_transaction_status(%L, null)', pg_temp.txn('in pending')),
    '22023',
    'update_transaction_status: p_new_status must be pending, processing, completed, failed, '
    || 'cancelled or reversed (got null)',
    'a null status is refused'
);
select throws_ok(
    $$select public.update_transaction_status(null, 'processing')$$,
    '22023', 'update_transaction_status: p_transaction_id must be a transaction id',
    'a null id is refused'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L, %L)',
        pg_temp.txn('in pending'), 'failed', repeat('x', 2001)
    ),
    '22023',
    'update_transaction_status: p_error_message must be null or 0 to 2000 characters',
    'an error message over 2000 characters is refused'
);
select is(
    (
        select status::text from public.transactions
        where id = pg_temp.txn('in pending')
    ),
    'pending',
    'and the transaction stays pending'
);

select * from finish();
rollback;
