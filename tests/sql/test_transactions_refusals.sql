-- create_transaction at its edges (functions-sql's transactions file): what it accepts, every
-- refusal with its SQLSTATE and message, that a refusal changes nothing, and what remains
-- refundable of a payment.
-- Runs as postgres on a fresh clone in one transaction: now() is constant, so every transaction
-- here is created (and moved) at now(). The users, notes and helpers are tests/sql/fixtures/
-- transactions.sql.
begin;
select plan(43);

call tests.fixture('transactions');
call pg_temp.story_created();

-- create_transaction: what it accepts at the edges and what it refuses ---------------------------

select is(
    (select t.amount from public.create_transaction(
        pg_temp.uid('aline'), 'credit', 1.01, 'USD'
    ) as t),
    1.01,
    'USD takes 2 decimals'
);
select is(
    (select t.amount from public.create_transaction(
        pg_temp.uid('aline'), 'credit', 3.125, 'KWD'
    ) as t),
    3.125,
    'KWD takes 3 decimals'
);
select is(
    (select t.amount from public.create_transaction(
        pg_temp.uid('aline'), 'commission', 999999999999999, 'RWF'
    ) as t),
    999999999999999::numeric,
    'an amount just under 10^15 is accepted'
);
select is(
    (select char_length(t.idempotency_key) from public.create_transaction(
        pg_temp.uid('aline'), 'commission', 1, 'RWF', repeat('k', 255)
    ) as t),
    255,
    'an idempotency key of 255 characters is accepted'
);

-- What remains refundable of the payment (1500): the pending refund of 500 counts against it,
-- a failed and a cancelled refund do not.
select is(
    pg_temp.make('refund failed', 'aline', 'refund', 300, 'RWF', null, 'payment')::text
    || pg_temp.move('refund failed', 'failed')
    || pg_temp.make('refund cancelled', 'aline', 'refund', 200, 'RWF', null, 'payment')::text
    || pg_temp.move('refund cancelled', 'cancelled'),
    pg_temp.txn('refund failed') || 'failed' || pg_temp.txn('refund cancelled') || 'cancelled',
    'a refund of 300 fails and one of 200 is cancelled'
);
-- A completed credit (3500 already) and a pending payment of Aline's; Dan's completed payment.
select is(
    pg_temp.make('pending payment', 'aline', 'payment', 100, 'RWF')::text
    || pg_temp.make('dan credit', 'dan', 'credit', 1000, 'RWF')::text
    || pg_temp.move('dan credit', 'processing', 'completed')
    || pg_temp.make('dan payment', 'dan', 'payment', 400, 'RWF')::text
    || pg_temp.move('dan payment', 'processing', 'completed'),
    pg_temp.txn('pending payment')::text || pg_temp.txn('dan credit') || 'completed'
    || pg_temp.txn('dan payment') || 'completed',
    'Aline has a pending payment, Dan a completed one'
);

insert into pg_temp.seen (note, n)
select
    'before refusals ' || c.key as note,
    c.value::numeric as n
from pg_temp.counts() as k, jsonb_each_text(to_jsonb(k)) as c;

select throws_ok(
    pg_temp.create_sql(null, 'credit', 10, 'RWF'),
    '22023', 'create_transaction: p_user_id must be a user id',
    'a null user is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('nobody'), 'credit', 10, 'RWF'),
    'PT404', 'create_transaction: no user 99999999-9999-4999-8999-999999999999',
    'an unknown user is not found'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'withdrawal', 10, 'RWF'),
    '22023',
    'create_transaction: p_type must be debit, credit, transfer, payment, refund, fee or '
    || 'commission (got withdrawal)',
    'an unknown type is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'Credit', 10, 'RWF'),
    '22023',
    'create_transaction: p_type must be debit, credit, transfer, payment, refund, fee or '
    || 'commission (got Credit)',
    'a type in capitals is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), null, 10, 'RWF'),
    '22023',
    'create_transaction: p_type must be debit, credit, transfer, payment, refund, fee or '
    || 'commission (got null)',
    'a null type is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'XYZ'),
    '22023',
    'create_transaction: p_currency must be an ISO 4217 code the platform handles, in capitals '
    || '(got XYZ)',
    'an unknown currency is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'rwf'),
    '22023',
    'create_transaction: p_currency must be an ISO 4217 code the platform handles, in capitals '
    || '(got rwf)',
    'a currency in lower case is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, null),
    '22023',
    'create_transaction: p_currency must be an ISO 4217 code the platform handles, in capitals '
    || '(got null)',
    'a null currency is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 0, 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got 0)',
    'an amount of 0 is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', -5, 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got -5)',
    'a negative amount is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', null, 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got null)',
    'a null amount is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 'NaN', 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got NaN)',
    'an amount of NaN is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 'Infinity', 'RWF'),
    '22023', 'create_transaction: p_amount must be more than 0 and less than 10^15 (got Infinity)',
    'an amount of Infinity is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 1e15, 'RWF'),
    '22023',
    'create_transaction: p_amount must be more than 0 and less than 10^15 (got 1000000000000000)',
    'an amount of 10^15 is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10.5, 'RWF'),
    '22023', 'create_transaction: p_amount must have at most 0 decimals in RWF (got 10.5)',
    'RWF takes no decimals'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 1.001, 'USD'),
    '22023', 'create_transaction: p_amount must have at most 2 decimals in USD (got 1.001)',
    'USD takes no more than 2 decimals'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 3.1255, 'KWD'),
    '22023', 'create_transaction: p_amount must have at most 3 decimals in KWD (got 3.1255)',
    'KWD takes no more than 3 decimals'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'RWF', null, '[1, 2]'),
    '22023', 'create_transaction: p_metadata must be a JSON object',
    'metadata that is an array is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'RWF', null, 'null'),
    '22023', 'create_transaction: p_metadata must be a JSON object',
    'metadata that is JSON null is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'transfer', 10, 'RWF'),
    '22023', 'create_transaction: p_counterparty_id is required for a transfer and only for one',
    'a transfer without a counterparty is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'debit', 10, 'RWF', null, '{}', pg_temp.uid('bosco')),
    '22023', 'create_transaction: p_counterparty_id is required for a transfer and only for one',
    'a debit with a counterparty is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'transfer', 10, 'RWF', null, '{}', pg_temp.uid('aline')
    ),
    '22023', 'create_transaction: a transfer needs a counterparty other than the user',
    'a transfer to oneself is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'transfer', 10, 'RWF', null, '{}', pg_temp.uid('nobody')
    ),
    'PT404',
    'create_transaction: no user 99999999-9999-4999-8999-999999999999 (p_counterparty_id)',
    'a transfer to an unknown user is not found'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('nobody'), 'transfer', 10, 'RWF', null, '{}', pg_temp.uid('aline')
    ),
    'PT404',
    'create_transaction: no user 99999999-9999-4999-8999-999999999999 (p_user_id)',
    'a transfer from an unknown user is not found, naming which of the two'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'refund', 10, 'RWF'),
    '22023',
    'create_transaction: p_original_transaction_id is required for a refund and only for one',
    'a refund without an original is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'credit', 10, 'RWF', null, '{}', null, pg_temp.txn('payment')
    ),
    '22023',
    'create_transaction: p_original_transaction_id is required for a refund and only for one',
    'a credit with an original is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'RWF', null, '{}', null, pg_temp.uid('nobody')
    ),
    'PT404',
    'create_transaction: no transaction 99999999-9999-4999-8999-999999999999 '
    || '(p_original_transaction_id)',
    'a refund of an unknown transaction is not found'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'RWF', null, '{}', null, pg_temp.txn('credit')
    ),
    '22023',
    format(
        'create_transaction: a refund gives back a debit, fee or payment of the same user in the '
        || 'same currency (%s is a credit of %s in RWF)',
        pg_temp.ref('credit'), pg_temp.uid('aline')
    ),
    'a refund of a credit is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'RWF', null, '{}', null, pg_temp.txn('dan payment')
    ),
    '22023',
    format(
        'create_transaction: a refund gives back a debit, fee or payment of the same user in the '
        || 'same currency (%s is a payment of %s in RWF)',
        pg_temp.ref('dan payment'), pg_temp.uid('dan')
    ),
    'a refund of another user''s payment is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'USD', null, '{}', null, pg_temp.txn('payment')
    ),
    '22023',
    format(
        'create_transaction: a refund gives back a debit, fee or payment of the same user in the '
        || 'same currency (%s is a payment of %s in RWF)',
        pg_temp.ref('payment'), pg_temp.uid('aline')
    ),
    'a refund in another currency is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 10, 'RWF', null, '{}', null,
        pg_temp.txn('pending payment')
    ),
    'PT409',
    format(
        'create_transaction: %s is pending, only a completed transaction can be refunded',
        pg_temp.ref('pending payment')
    ),
    'a refund of a payment not completed is refused'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 1001, 'RWF', null, '{}', null, pg_temp.txn('payment')
    ),
    'PT409',
    format(
        'create_transaction: a refund of 1001 RWF exceeds the 1000 RWF still refundable of %s',
        pg_temp.ref('payment')
    ),
    'a refund over what remains (1500 less the pending 500; the failed and cancelled ones do '
    || 'not count) is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'RWF', repeat('k', 256)),
    '22023', 'create_transaction: p_idempotency_key must be 1 to 255 characters',
    'an idempotency key of 256 characters is refused'
);
select throws_ok(
    pg_temp.create_sql(pg_temp.uid('aline'), 'credit', 10, 'RWF', ''),
    '22023', 'create_transaction: p_idempotency_key must be 1 to 255 characters',
    'an empty idempotency key is refused'
);
select results_eq(
    $$select * from pg_temp.counts()$$,
    $$select pg_temp.seen('before refusals transactions')::bigint,
             pg_temp.seen('before refusals directory')::bigint,
             pg_temp.seen('before refusals events')::bigint,
             pg_temp.seen('before refusals outbox')::bigint,
             pg_temp.seen('before refusals wallets')::bigint,
             pg_temp.seen('before refusals balances')$$,
    'the refused calls changed nothing: transactions, directory, events, outbox and wallets'
);

-- Exactly what remains is refundable, and then nothing.
select is(
    (select t.amount from public.create_transaction(
        pg_temp.uid('aline'), 'refund', 1000, 'RWF', null, '{}', null, pg_temp.txn('payment')
    ) as t),
    1000::numeric,
    'a refund of exactly what remains is accepted'
);
select throws_ok(
    pg_temp.create_sql(
        pg_temp.uid('aline'), 'refund', 1, 'RWF', null, '{}', null, pg_temp.txn('payment')
    ),
    'PT409',
    format(
        'create_transaction: a refund of 1 RWF exceeds the 0 RWF still refundable of %s',
        pg_temp.ref('payment')
    ),
    'after it nothing more is refundable'
);

select * from finish();
rollback;
