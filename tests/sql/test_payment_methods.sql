-- payment_methods (migration 20260401120000_transactions_payments.sql, functions in
-- supabase/functions-sql/*_payment_methods.sql): add_payment_method with its per-type checks and
-- masked labels, account details encrypted under private.payment_method_keys, one default per
-- user, verification, audited decryption, key rotation (a local key and a Vault one), the
-- table's audit with account_details redacted, RLS and the column grant, and who may call what.
-- Runs as postgres on a fresh clone in one transaction: now() is constant, so updated_at never
-- changes and an update's changed_keys name only what the statement changed.
begin;
select plan(103);

create temp table seen (note text primary key, id uuid, returned jsonb, n bigint);
grant select, insert on pg_temp.seen to anon, authenticated, service_role;
create function pg_temp.method(p_note text)
returns uuid
language sql
as $$ select id from pg_temp.seen where note = p_note $$;
create function pg_temp.returned(p_note text)
returns jsonb
language sql
as $$ select returned from pg_temp.seen where note = p_note $$;

-- What each method was added with, and the part of it that must never be seen in the clear.
create temp table plain (note text primary key, details jsonb, secret_part text);
insert into pg_temp.plain (note, details, secret_part) values
('mtn', '{"phone_number": "+250788234567"}', '+250788234567'),
(
    'visa', '{"number": "4111111111111111", "expiry": "12/29", "holder": "Aline U"}',
    '4111111111111111'
),
('bank', '{"account_number": "00040012345678", "branch": "Kigali"}', '00040012345678'),
('wallet', '{"account_id": "acct-998877"}', 'acct-998877'),
('cash', '{}', null),
('airtel', '{"phone_number": "+250733555666"}', '+250733555666'),
('bosco airtel', '{"phone_number": "+250733111222"}', '+250733111222'),
(
    'bosco card',
    '{"number": "5500000000000004", "expiry": "01/30", "phone_number": "+250733000444"}',
    '5500000000000004'
),
('long provider', '{"phone_number": "+250733999888"}', '+250733999888'),
('after rotation', '{"number": "340000000000009", "expiry": "02/31"}', '340000000000009');
create function pg_temp.details(p_note text)
returns jsonb
language sql
as $$ select details from pg_temp.plain where note = p_note $$;

-- The stored details of method p_id, decrypted with the secret its key row holds.
create function pg_temp.decrypted(p_id uuid)
returns jsonb
language sql
as $$
    select extensions.pgp_sym_decrypt(m.account_details, k.secret)::jsonb
    from public.payment_methods as m
    inner join private.payment_method_keys as k on m.key_id = k.key_id
    where m.id = p_id
$$;

-- Who sees what, per viewer.
create temp table visible (
    viewer text, id uuid, masked_label text, is_default boolean, verification_status text
);
grant select, insert on pg_temp.visible to anon, authenticated, service_role;

-- Aline and Bosco have methods; Claire (known by her WhatsApp id only) has none.
insert into public.users (id, phone_number, wa_user_id, display_name) values
('a0000000-0000-4000-8000-000000000001', '+250788000001', null, 'Aline'),
('a0000000-0000-4000-8000-000000000002', '+250788000002', null, 'Bosco'),
('a0000000-0000-4000-8000-000000000003', null, 'RW.3', 'Claire');

-- add_payment_method: one of each type ---------------------------------------------------------

insert into pg_temp.seen (note, id, returned)
select 'mtn', r.id, to_jsonb(r)
from public.add_payment_method(
    'a0000000-0000-4000-8000-000000000001', 'mobile_money', 'mtn', pg_temp.details('mtn'), true
) as r
union all
select 'visa', r.id, to_jsonb(r)
from public.add_payment_method(
    'a0000000-0000-4000-8000-000000000001', 'card', 'visa', pg_temp.details('visa')
) as r
union all
select 'bank', r.id, to_jsonb(r)
from public.add_payment_method(
    'a0000000-0000-4000-8000-000000000001', 'bank_account', 'bk', pg_temp.details('bank')
) as r
union all
-- Cash with the default details ('{}').
select 'cash', r.id, to_jsonb(r)
from public.add_payment_method('a0000000-0000-4000-8000-000000000001', 'cash', 'Cash') as r
union all
select 'bosco airtel', r.id, to_jsonb(r)
from public.add_payment_method(
    'a0000000-0000-4000-8000-000000000002', 'mobile_money', 'airtel',
    pg_temp.details('bosco airtel'), true
) as r
union all
select 'long provider', r.id, to_jsonb(r)
from public.add_payment_method(
    'a0000000-0000-4000-8000-000000000002', 'mobile_money', repeat('a', 50),
    pg_temp.details('long provider')
) as r
union all
select 'bosco card', r.id, to_jsonb(r)
from public.add_payment_method(
    'a0000000-0000-4000-8000-000000000002', 'card', 'mastercard', pg_temp.details('bosco card')
) as r;

select lives_ok(
    $$select tests.as_caller(
        'service_role', '{"role": "service_role"}',
        'insert into pg_temp.seen (note, id, returned) select ''wallet'', r.id, to_jsonb(r) '
        || 'from public.add_payment_method(''a0000000-0000-4000-8000-000000000001'', '
        || '''wallet'', ''momopay'', ''{"account_id": "acct-998877"}'') as r'
    )$$,
    'service_role adds a wallet method'
);
select results_eq(
    $$select note, returned ->> 'method_type', returned ->> 'provider',
             returned ->> 'masked_label', (returned ->> 'is_default')::boolean
        from pg_temp.seen
       where note in ('mtn', 'visa', 'bank', 'wallet', 'cash', 'bosco airtel')
       order by note$$,
    $$values ('bank', 'bank_account', 'bk', 'BK **** 5678', false),
             ('bosco airtel', 'mobile_money', 'airtel', 'AIRTEL **** 1222', true),
             ('cash', 'cash', 'Cash', 'Cash', false),
             ('mtn', 'mobile_money', 'mtn', 'MTN **** 4567', true),
             ('visa', 'card', 'visa', 'VISA **** 1111', false),
             ('wallet', 'wallet', 'momopay', 'MOMOPAY **** 8877', false)$$,
    'each type is returned with its masked label: the provider upper-cased and the account''s '
    || 'last 4 characters; cash shows the provider alone'
);
select is(
    pg_temp.returned('long provider') ->> 'masked_label', repeat('A', 50) || ' **** 9888',
    'a provider of 50 characters is accepted and labelled in full'
);
select is(
    pg_temp.returned('bosco card') ->> 'masked_label', 'MASTERCARD **** 0004',
    'a card''s label shows the card number''s last 4 even when its details also hold a phone '
    || 'number'
);
select is_empty(
    $$select note from pg_temp.seen
       where returned -> 'account_details' is distinct from 'null'::jsonb
          or returned -> 'key_id' is distinct from 'null'::jsonb$$,
    'the returned methods carry neither the account details nor the key id (both null)'
);
select col_type_is(
    'public', 'payment_methods', 'account_details', 'bytea', 'account_details is stored as bytea'
);
select is_empty(
    $$select p.note
        from pg_temp.plain as p
        inner join pg_temp.seen as s on p.note = s.note
        inner join public.payment_methods as m on s.id = m.id
       where position(p.secret_part in encode(m.account_details, 'escape')) > 0
          or m.account_details = convert_to(p.details::text, 'UTF8')$$,
    'the stored account details are not the plain text and do not contain the account number'
);
select results_eq(
    $$select s.note, pg_temp.decrypted(s.id) from pg_temp.seen as s
       where s.note in (select note from pg_temp.plain) order by s.note$$,
    $$select note, details from pg_temp.plain
       where note in (select note from pg_temp.seen) order by note$$,
    'the stored details decrypt, with the secret of the key they name, to the JSON given'
);
select results_eq(
    $$select distinct key_id from public.payment_methods$$,
    $$select key_id from private.payment_method_keys where retired_at is null$$,
    'every method names the current key (the migration''s local-1)'
);
select results_eq(
    $$select key_id from private.payment_method_keys where retired_at is null$$,
    $$values ('local-1'::text)$$,
    'the current key is the migration''s local-1'
);

-- add_payment_method: what it refuses ------------------------------------------------------------

select throws_ok(
    $$select public.add_payment_method(null, 'cash', 'Cash')$$,
    '22023', 'add_payment_method: p_user_id must be a user id',
    'a null user is refused'
);
select throws_ok(
    $$select public.add_payment_method('a0000000-0000-4000-8000-0000000000ff', 'cash', 'Cash')$$,
    'PT404', 'add_payment_method: no user a0000000-0000-4000-8000-0000000000ff',
    'an unknown user is not found'
);
select throws_ok(
    $$select public.add_payment_method('a0000000-0000-4000-8000-000000000001', 'crypto', 'btc')$$,
    '22023',
    'add_payment_method: p_method_type must be card, mobile_money, bank_account, wallet or cash '
    || '(got crypto)',
    'an unknown method type is refused'
);
select throws_ok(
    $$select public.add_payment_method('a0000000-0000-4000-8000-000000000001', null, 'btc')$$,
    '22023',
    'add_payment_method: p_method_type must be card, mobile_money, bank_account, wallet or cash '
    || '(got null)',
    'a null method type is refused'
);
select throws_ok(
    $$select public.add_payment_method('a0000000-0000-4000-8000-000000000001', 'cash', '')$$,
    '22023', 'add_payment_method: p_provider must be 1 to 50 characters',
    'an empty provider is refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'cash', repeat('p', 51)
    )$$,
    '22023', 'add_payment_method: p_provider must be 1 to 50 characters',
    'a provider of 51 characters is refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'cash', 'Cash', '[1, 2]'
    )$$,
    '22023', 'add_payment_method: p_account_details must be a JSON object',
    'details that are not a JSON object are refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'cash', 'Cash', null
    )$$,
    '22023', 'add_payment_method: p_account_details must be a JSON object',
    'null details are refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'mobile_money', 'mtn',
        '{"phone_number": "0788234567"}'
    )$$,
    '22023', 'add_payment_method: p_account_details.phone_number must be an E.164 phone number',
    'mobile money with a phone number that is not E.164 is refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'mobile_money', 'mtn',
        '{"phone_number": "+250 788 234 567"}'
    )$$,
    '22023', 'add_payment_method: p_account_details.phone_number must be an E.164 phone number',
    'mobile money with a phone number written with spaces is refused: it is stored as given'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'mobile_money', 'mtn', '{}'
    )$$,
    '22023', 'add_payment_method: p_account_details.phone_number must be an E.164 phone number',
    'mobile money without a phone number is refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'card', 'visa',
        '{"number": "41111111111", "expiry": "12/29"}'
    )$$,
    '22023', 'add_payment_method: p_account_details.number must be 12 to 19 digits',
    'a card number of 11 digits is refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'card', 'visa',
        '{"number": "4111111111111111", "expiry": "13/29"}'
    )$$,
    '22023', 'add_payment_method: p_account_details.expiry must be MM/YY',
    'a card expiry with month 13 is refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'card', 'visa', '{"number": "4111111111111111"}'
    )$$,
    '22023', 'add_payment_method: p_account_details.expiry must be MM/YY',
    'a card without an expiry is refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'bank_account', 'bk',
        '{"account_number": "0004-0012"}'
    )$$,
    '22023',
    'add_payment_method: p_account_details.account_number must be 4 to 34 letters or digits',
    'a bank account number with a hyphen is refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'bank_account', 'bk', '{"account_number": "123"}'
    )$$,
    '22023',
    'add_payment_method: p_account_details.account_number must be 4 to 34 letters or digits',
    'a bank account number of 3 characters is refused'
);
select throws_ok(
    $$select public.add_payment_method(
        'a0000000-0000-4000-8000-000000000001', 'wallet', 'momopay', '{"account_id": "abc"}'
    )$$,
    '22023', 'add_payment_method: p_account_details.account_id must be 4 to 100 characters',
    'a wallet account id of 3 characters is refused'
);
select throws_ok(
    format(
        'select public.add_payment_method(%L, %L, %L, %L)',
        'a0000000-0000-4000-8000-000000000001', 'wallet', 'momopay',
        jsonb_build_object('account_id', repeat('w', 101))
    ),
    '22023', 'add_payment_method: p_account_details.account_id must be 4 to 100 characters',
    'a wallet account id of 101 characters is refused'
);
select throws_ok(
    $$select tests.as_role('anon', 'select public.add_payment_method(null, ''cash'', ''x'')')$$,
    '42501', 'permission denied for function add_payment_method',
    'anon may not add a method'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000003", "role": "authenticated"}',
        'select public.add_payment_method(''a0000000-0000-4000-8000-000000000003'', ''cash'', '
        || '''Cash'')'
    )$$,
    '42501', 'permission denied for function add_payment_method',
    'a signed-in user may not add a method, even for themselves'
);
select is(
    (select count(*) from public.payment_methods), 8::bigint,
    'refused calls add no row (the 8 methods added above are all there is)'
);

-- Defaults ----------------------------------------------------------------------------------------

insert into pg_temp.seen (note, id, returned)
select 'airtel', r.id, to_jsonb(r)
from public.add_payment_method(
    'a0000000-0000-4000-8000-000000000001', 'mobile_money', 'airtel', pg_temp.details('airtel'),
    true
) as r;
select results_eq(
    $$select s.note, m.is_default from pg_temp.seen as s
       inner join public.payment_methods as m on s.id = m.id
       where m.user_id = 'a0000000-0000-4000-8000-000000000001' order by s.note$$,
    $$values ('airtel', true), ('bank', false), ('cash', false), ('mtn', false), ('visa', false),
             ('wallet', false)$$,
    'a method added with p_is_default replaces the user''s default'
);
select results_eq(
    $$select s.note, m.is_default from pg_temp.seen as s
       inner join public.payment_methods as m on s.id = m.id
       where m.user_id = 'a0000000-0000-4000-8000-000000000002' order by s.note$$,
    $$values ('bosco airtel', true), ('bosco card', false), ('long provider', false)$$,
    'and leaves other users'' defaults alone'
);
select throws_ok(
    $$insert into public.payment_methods (
        user_id, method_type, provider, masked_label, account_details, key_id, is_default
    ) values (
        'a0000000-0000-4000-8000-000000000001', 'cash', 'Cash', 'Cash', '\x00', 'local-1', true
    )$$,
    '23505', 'duplicate key value violates unique constraint "payment_methods_one_default"',
    'a second default for a user is refused by the table itself, even to its owner'
);

select lives_ok(
    format(
        $$select tests.as_caller('service_role', %L, %L)$$,
        '{"role": "service_role"}',
        format(
            'insert into pg_temp.seen (note, returned) select %L, to_jsonb(r) '
            'from public.set_default_payment_method(%L) as r',
            'default visa', pg_temp.method('visa')
        )
    ),
    'service_role makes any method the default'
);
select results_eq(
    $$select returned ->> 'id', (returned ->> 'is_default')::boolean,
             returned -> 'account_details', returned -> 'key_id'
        from pg_temp.seen where note = 'default visa'$$,
    format(
        'values (%L, true, %L::jsonb, %L::jsonb)', pg_temp.method('visa'), 'null', 'null'
    ),
    'set_default_payment_method returns the method, now the default, without its details'
);
select results_eq(
    $$select s.note, m.is_default from pg_temp.seen as s
       inner join public.payment_methods as m on s.id = m.id
       where m.user_id = 'a0000000-0000-4000-8000-000000000001' order by s.note$$,
    $$values ('airtel', false), ('bank', false), ('cash', false), ('mtn', false), ('visa', true),
             ('wallet', false)$$,
    'the old default is no longer, the new one is'
);
insert into pg_temp.seen (note, n)
select 'updates before', count(*) from public.system_audit_logs
where resource_type = 'public.payment_methods' and action = 'update';
select ok(
    (public.set_default_payment_method(pg_temp.method('visa'))).is_default,
    'making the default the default again answers the same'
);
select is(
    (select count(*) from public.system_audit_logs
      where resource_type = 'public.payment_methods' and action = 'update'),
    (select n from pg_temp.seen where note = 'updates before'),
    'and changes nothing (no row updated)'
);
select lives_ok(
    format(
        $$select tests.as_caller('authenticated', %L, %L)$$,
        '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        format(
            'insert into pg_temp.seen (note, returned) select %L, to_jsonb(r) '
            'from public.set_default_payment_method(%L) as r',
            'default bank', pg_temp.method('bank')
        )
    ),
    'the signed-in owner makes one of her methods the default'
);
select results_eq(
    $$select s.note, m.is_default from pg_temp.seen as s
       inner join public.payment_methods as m on s.id = m.id
       where m.user_id = 'a0000000-0000-4000-8000-000000000001' order by s.note$$,
    $$values ('airtel', false), ('bank', true), ('cash', false), ('mtn', false), ('visa', false),
             ('wallet', false)$$,
    'her choice is the default, the previous one not'
);
select results_eq(
    format(
        $$select actor_type::text, actor_identifier, changed_keys from public.system_audit_logs
           where resource_type = 'public.payment_methods' and action = 'update'
             and resource_id = %L order by id$$,
        pg_temp.method('bank')
    ),
    $$values ('user'::text, 'a0000000-0000-4000-8000-000000000001'::text, '{is_default}'::text[])$$,
    'the flip is audited as hers'
);
select throws_ok(
    format(
        $$select tests.as_caller('authenticated', %L, %L)$$,
        '{"sub": "a0000000-0000-4000-8000-000000000002", "role": "authenticated"}',
        format('select public.set_default_payment_method(%L)', pg_temp.method('wallet'))
    ),
    'PT404', format('set_default_payment_method: no payment method %s', pg_temp.method('wallet')),
    'to a signed-in stranger another user''s method does not exist'
);
select results_eq(
    $$select s.note, m.is_default from pg_temp.seen as s
       inner join public.payment_methods as m on s.id = m.id
       where m.is_default order by s.note$$,
    $$values ('bank', true), ('bosco airtel', true)$$,
    'and the stranger''s attempt changes nobody''s default'
);
select throws_ok(
    $$select public.set_default_payment_method('00000000-0000-4000-8000-000000000000')$$,
    'PT404', 'set_default_payment_method: no payment method 00000000-0000-4000-8000-000000000000',
    'an unknown method is not found'
);
select throws_ok(
    $$select public.set_default_payment_method(null)$$,
    '22023', 'set_default_payment_method: p_payment_method_id must be a payment method id',
    'a null method id is refused'
);
select throws_ok(
    format(
        $$select tests.as_role('anon', %L)$$,
        format('select public.set_default_payment_method(%L)', pg_temp.method('wallet'))
    ),
    '42501', 'permission denied for function set_default_payment_method',
    'anon may not set a default'
);

-- Verification ------------------------------------------------------------------------------------

select lives_ok(
    format(
        $$select tests.as_caller('service_role', %L, %L)$$,
        '{"role": "service_role"}',
        format(
            'insert into pg_temp.seen (note, returned) select %L, to_jsonb(r) '
            'from public.set_payment_method_verification(%L, %L) as r',
            'verified visa', pg_temp.method('visa'), 'verified'
        )
    ),
    'service_role marks a method verified'
);
select results_eq(
    $$select r.returned ->> 'verification_status', (r.returned ->> 'verified_at')::timestamptz,
             r.returned -> 'account_details', r.returned -> 'key_id',
             m.verification_status, m.verified_at
        from pg_temp.seen as r
        inner join public.payment_methods as m on (r.returned ->> 'id')::uuid = m.id
       where r.note = 'verified visa'$$,
    $$values ('verified'::text, now(), 'null'::jsonb, 'null'::jsonb, 'verified'::text, now())$$,
    'verified sets verified_at; the method is returned without its details'
);
select results_eq(
    format(
        $$select verification_status, verified_at
            from public.set_payment_method_verification(%L, 'failed')$$,
        pg_temp.method('visa')
    ),
    $$values ('failed'::text, null::timestamptz)$$,
    'failed clears verified_at'
);
select results_eq(
    format(
        $$select verification_status, verified_at from public.payment_methods where id = %L$$,
        pg_temp.method('visa')
    ),
    $$values ('failed'::text, null::timestamptz)$$,
    'and so does the stored row'
);
select throws_ok(
    format(
        'select public.set_payment_method_verification(%L, %L)', pg_temp.method('visa'), 'done'
    ),
    '22023',
    'set_payment_method_verification: p_verification_status must be unverified, pending, '
    || 'verified or failed (got done)',
    'an unknown status is refused'
);
select throws_ok(
    format('select public.set_payment_method_verification(%L, null)', pg_temp.method('visa')),
    '22023',
    'set_payment_method_verification: p_verification_status must be unverified, pending, '
    || 'verified or failed (got null)',
    'a null status is refused'
);
select throws_ok(
    $$select public.set_payment_method_verification(
        '00000000-0000-4000-8000-000000000000', 'verified'
    )$$,
    'PT404',
    'set_payment_method_verification: no payment method 00000000-0000-4000-8000-000000000000',
    'verifying an unknown method: not found'
);
select throws_ok(
    format(
        $$select tests.as_caller('authenticated', %L, %L)$$,
        '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        format(
            'select public.set_payment_method_verification(%L, %L)',
            pg_temp.method('visa'), 'verified'
        )
    ),
    '42501', 'permission denied for function set_payment_method_verification',
    'the signed-in owner may not verify her own method'
);
select throws_ok(
    format(
        $$select tests.as_role('anon', %L)$$,
        format(
            'select public.set_payment_method_verification(%L, %L)',
            pg_temp.method('visa'), 'verified'
        )
    ),
    '42501', 'permission denied for function set_payment_method_verification',
    'anon may not verify'
);

-- get_payment_method_details ------------------------------------------------------------------

select lives_ok(
    format(
        $$select tests.as_caller('service_role', %L, %L)$$,
        '{"role": "service_role"}',
        format(
            'insert into pg_temp.seen (note, returned) select %L, '
            'public.get_payment_method_details(%L)',
            'details visa', pg_temp.method('visa')
        )
    ),
    'service_role reads a method''s details'
);
select is(
    pg_temp.returned('details visa'), pg_temp.details('visa'),
    'get_payment_method_details returns the decrypted JSON'
);
select lives_ok(
    format(
        $$select tests.as_caller('service_role', %L, %L)$$,
        '{"role": "service_role", "sub": "billing-service"}',
        format(
            'insert into pg_temp.seen (note, returned) select %L, '
            'public.get_payment_method_details(%L)',
            'details mtn', pg_temp.method('mtn')
        )
    ),
    'a service with a sub reads another method''s details'
);
select results_eq(
    $$select actor_type::text, actor_identifier, resource_type::text, resource_id::uuid,
             metadata::jsonb
        from public.system_audit_logs
       where action = 'payment_method.details_read' order by id$$,
    $$values
        ('service'::text, 'service_role'::text, 'public.payment_methods'::text,
         pg_temp.method('visa'),
         '{"user_id": "a0000000-0000-4000-8000-000000000001", "key_id": "local-1"}'::jsonb),
        ('service', 'billing-service', 'public.payment_methods', pg_temp.method('mtn'),
         '{"user_id": "a0000000-0000-4000-8000-000000000001", "key_id": "local-1"}')$$,
    'each read is audited as payment_method.details_read: the method, its user and key, the '
    || 'actor from the claims'
);
select throws_ok(
    $$select public.get_payment_method_details('00000000-0000-4000-8000-000000000000')$$,
    'PT404', 'get_payment_method_details: no payment method 00000000-0000-4000-8000-000000000000',
    'reading an unknown method: not found'
);
select throws_ok(
    format(
        $$select tests.as_caller('authenticated', %L, %L)$$,
        '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        format('select public.get_payment_method_details(%L)', pg_temp.method('visa'))
    ),
    '42501', 'permission denied for function get_payment_method_details',
    'the signed-in owner may not read the plain details, even of her own method'
);
select throws_ok(
    format(
        $$select tests.as_role('anon', %L)$$,
        format('select public.get_payment_method_details(%L)', pg_temp.method('visa'))
    ),
    '42501', 'permission denied for function get_payment_method_details',
    'anon may not read details'
);
select is(
    (select count(*) from public.system_audit_logs where action = 'payment_method.details_read'),
    2::bigint,
    'refused reads leave no read in the log'
);

-- RLS and the column grant ------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from public.payment_methods')$$,
    '42501', 'permission denied for table payment_methods',
    'anon may not read payment methods'
);
select lives_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'insert into pg_temp.visible select ''aline'', id, masked_label, is_default, '
        || 'verification_status from public.payment_methods'
    )$$,
    'the signed-in owner reads her methods'' granted columns'
);
select results_eq(
    $$select id, masked_label, is_default, verification_status from pg_temp.visible
       where viewer = 'aline' order by id$$,
    $$select id, masked_label, is_default, verification_status from public.payment_methods
       where user_id = 'a0000000-0000-4000-8000-000000000001' order by id$$,
    'she sees her own methods, all of them, and no one else''s'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select account_details from public.payment_methods'
    )$$,
    '42501', 'permission denied for table payment_methods',
    'the owner may not select account_details (not in the column grant)'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select key_id from public.payment_methods'
    )$$,
    '42501', 'permission denied for table payment_methods',
    'the owner may not select key_id (not in the column grant)'
);
select throws_ok(
    format(
        $$select tests.as_caller('authenticated', %L, %L)$$,
        '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        format(
            'update public.payment_methods set is_default = true where id = %L',
            pg_temp.method('wallet')
        )
    ),
    '42501', 'permission denied for table payment_methods',
    'the owner may not update her methods directly'
);
select lives_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000002", "role": "authenticated"}',
        'insert into pg_temp.visible select ''bosco'', id, masked_label, is_default, '
        || 'verification_status from public.payment_methods'
    )$$,
    'another signed-in user reads payment methods'
);
select results_eq(
    $$select id from pg_temp.visible where viewer = 'bosco' order by id$$,
    $$select id from public.payment_methods
       where user_id = 'a0000000-0000-4000-8000-000000000002' order by id$$,
    'he sees his own methods and none of hers'
);
select lives_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000003", "role": "authenticated"}',
        'insert into pg_temp.visible select ''claire'', id, masked_label, is_default, '
        || 'verification_status from public.payment_methods'
    )$$,
    'a signed-in user without methods reads payment methods'
);
select is_empty(
    $$select id from pg_temp.visible where viewer = 'claire'$$,
    'and sees none'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.visible select ''service'', id, masked_label, is_default, '
        || 'verification_status from public.payment_methods'
    )$$,
    'service_role reads the granted columns'
);
select is(
    (select count(*) from pg_temp.visible where viewer = 'service'),
    (select count(*) from public.payment_methods),
    'of every method (it bypasses RLS)'
);
select throws_ok(
    $$select tests.as_role('service_role', 'select account_details from public.payment_methods')$$,
    '42501', 'permission denied for table payment_methods',
    'service_role may not select account_details either: it has the same column grant'
);
select throws_ok(
    $$select tests.as_role('service_role', 'select key_id from public.payment_methods')$$,
    '42501', 'permission denied for table payment_methods',
    'nor key_id'
);
select results_eq(
    $$select r.role, array(
            select a.attname::text collate "default" from pg_catalog.pg_attribute as a
             where a.attrelid = 'public.payment_methods'::regclass and a.attnum > 0
               and not a.attisdropped
               and has_column_privilege(r.role, a.attrelid, a.attnum, 'select')
             order by a.attnum)
        from unnest(array['anon', 'authenticated', 'service_role']) as r (role)$$,
    $$values
        ('anon', '{}'::text[]),
        ('authenticated', '{id,user_id,method_type,provider,masked_label,is_default,'
         'verification_status,verified_at,created_at,updated_at}'),
        ('service_role', '{id,user_id,method_type,provider,masked_label,is_default,'
         'verification_status,verified_at,created_at,updated_at}')$$,
    'the migration grants select on every column but account_details and key_id, to '
    || 'authenticated and service_role, and nothing to anon'
);
select is_empty(
    $$select r.role from unnest(array['anon', 'authenticated', 'service_role']) as r (role)
       where has_any_column_privilege(
                r.role, 'public.payment_methods', 'insert, update, references'
             )
          or has_table_privilege(r.role, 'public.payment_methods', 'delete, truncate, trigger')$$,
    'no API role may write payment_methods'
);
select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from private.payment_method_keys')$$,
    '42501', 'permission denied for schema private',
    'anon may not read the keys'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select count(*) from private.payment_method_keys'
    )$$,
    '42501', 'permission denied for schema private',
    'a signed-in user may not read the keys'
);
select throws_ok(
    $$select tests.as_role('service_role', 'select count(*) from private.payment_method_keys')$$,
    '42501', 'permission denied for schema private',
    'service_role may not read the keys'
);

-- Key rotation ------------------------------------------------------------------------------------

create temp table before_rotation as
select id, account_details, key_id from public.payment_methods;

select is(
    private.rotate_payment_method_key('k2'),
    (select count(*)::integer from pg_temp.before_rotation),
    'rotate_payment_method_key(''k2'') re-encrypts every method and says how many'
);
select results_eq(
    $$select key_id, retired_at is null, secret is not null from private.payment_method_keys$$,
    $$values ('k2'::text, true, true)$$,
    'k2 is the current key, with a secret of its own; local-1, retired and unused, is gone'
);
select is_empty(
    $$select m.id from public.payment_methods as m
       inner join pg_temp.before_rotation as b on m.id = b.id
       where m.key_id <> 'k2' or m.account_details = b.account_details$$,
    'every method names k2 and its ciphertext changed'
);
select results_eq(
    $$select s.note, public.get_payment_method_details(s.id) from pg_temp.seen as s
       where s.note in (select note from pg_temp.plain) order by s.note$$,
    $$select note, details from pg_temp.plain
       where note in (select note from pg_temp.seen) order by note$$,
    'get_payment_method_details still returns every method''s details'
);
select results_eq(
    $$select s.note, pg_temp.decrypted(s.id) from pg_temp.seen as s
       where s.note in (select note from pg_temp.plain) order by s.note$$,
    $$select note, details from pg_temp.plain
       where note in (select note from pg_temp.seen) order by note$$,
    'and they decrypt with k2''s secret'
);
insert into pg_temp.seen (note, id, returned)
select 'after rotation', r.id, to_jsonb(r)
from public.add_payment_method(
    'a0000000-0000-4000-8000-000000000002', 'card', 'amex', pg_temp.details('after rotation')
) as r;
select results_eq(
    format(
        $$select key_id, pg_temp.decrypted(id) from public.payment_methods where id = %L$$,
        pg_temp.method('after rotation')
    ),
    $$select 'k2'::text, details from pg_temp.plain where note = 'after rotation'$$,
    'a method added after the rotation is encrypted under k2'
);
select throws_ok(
    $$select private.rotate_payment_method_key('K3!')$$,
    '23514',
    'new row for relation "payment_method_keys" violates check constraint '
    || '"payment_method_keys_key_id_format"',
    'a rotation to a malformed key id is refused'
);
select results_eq(
    $$select key_id, retired_at is null from private.payment_method_keys$$,
    $$values ('k2'::text, true)$$,
    'and changes nothing: k2 is still current'
);
select throws_ok(
    $$select tests.as_role('service_role', 'select private.rotate_payment_method_key(''k9'')')$$,
    '42501', 'permission denied for schema private',
    'service_role may not rotate keys'
);

-- A key kept in Vault: what hosted Supabase's vault.decrypted_secrets shows, emulated here.
create schema vault;
create table vault.decrypted_secrets (name text primary key, decrypted_secret text);
insert into vault.decrypted_secrets (name, decrypted_secret) values
('payment_method_key:k3', 'vault-secret-k3-0123456789-abcdefghijklmnop');
select is(
    private.rotate_payment_method_key('k3'), (select count(*)::integer from public.payment_methods),
    'rotating to a key whose secret is in Vault re-encrypts every method'
);
select results_eq(
    $$select key_id, retired_at is null, secret is null from private.payment_method_keys$$,
    $$values ('k3'::text, true, true)$$,
    'k3''s row holds no secret (it is Vault''s); k2 is gone'
);
select is_empty(
    $$select s.note from pg_temp.seen as s
       inner join pg_temp.plain as p on s.note = p.note
       inner join public.payment_methods as m on s.id = m.id
       where m.key_id <> 'k3'
          or extensions.pgp_sym_decrypt(
                m.account_details, 'vault-secret-k3-0123456789-abcdefghijklmnop'
             )::jsonb <> p.details$$,
    'every method is encrypted with the Vault secret'
);
select results_eq(
    $$select s.note, public.get_payment_method_details(s.id) from pg_temp.seen as s
       where s.note in (select note from pg_temp.plain) order by s.note$$,
    $$select note, details from pg_temp.plain
       where note in (select note from pg_temp.seen) order by note$$,
    'and get_payment_method_details reads them with it'
);

-- The table's audit -------------------------------------------------------------------------------

select is(
    (select count(*) from public.system_audit_logs
      where resource_type = 'public.payment_methods' and action = 'insert'),
    (select count(*) from public.payment_methods),
    'every method added is in the audit log, once'
);
select results_eq(
    format(
        $$select actor_type::text, changed_keys, old_data ->> 'account_details',
                 new_data ->> 'account_details'
            from public.system_audit_logs
           where resource_type = 'public.payment_methods' and action = 'update'
             and resource_id = %L
           order by id$$,
        pg_temp.method('visa')
    ),
    $$values
        ('service'::text, '{is_default}'::text[], '[redacted]'::text, '[redacted]'::text),
        ('user', '{is_default}', '[redacted]', '[redacted]'),
        ('service', '{verification_status,verified_at}', '[redacted]', '[redacted]'),
        ('database', '{verification_status,verified_at}', '[redacted]', '[redacted]'),
        ('database', '{account_details,key_id}', '[redacted]', '[redacted]'),
        ('database', '{account_details,key_id}', '[redacted]', '[redacted]')$$,
    'each update of a method is audited (made default, unmade, verified, failed, two '
    || 'rotations), its details redacted before and after'
);
select is_empty(
    $$select l.id from public.system_audit_logs as l
       where l.resource_type = 'public.payment_methods' and l.action in ('insert', 'update')
         and (l.new_data ->> 'account_details' is distinct from '[redacted]'
              or l.action = 'update'
              and l.old_data ->> 'account_details' is distinct from '[redacted]')$$,
    'no insert or update of a method is logged with its account_details unredacted'
);
select is_empty(
    $$select l.id from public.system_audit_logs as l
       cross join pg_temp.plain as p
       where l.resource_type = 'public.payment_methods'
         and (position(p.secret_part in concat(l.old_data::text, l.new_data::text,
                                               l.metadata::text)) > 0
              or position('\x' in concat(l.old_data::text, l.new_data::text,
                                         l.metadata::text)) > 0)$$,
    'the audit log never holds an account number nor a ciphertext (a bytea''s \x)'
);

-- The RPCs ----------------------------------------------------------------------------------------

select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('add_payment_method', 'set_default_payment_method',
                           'set_payment_method_verification', 'get_payment_method_details')
         and (coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
              or has_function_privilege('anon', p.oid, 'execute')
              -- Security definer, except the one signed-in users call (below).
              or p.prosecdef = (p.proname = 'set_default_payment_method')
              or p.proconfig is distinct from array['search_path=""'])$$,
    'every payment method RPC has a comment, search_path pinned, and anon may not execute it; '
    || 'those only service_role calls are security definer'
);
select results_eq(
    $$select p.oid::regprocedure::text collate "default", p.prosecdef,
             p.proconfig = array['search_path=""'],
             has_function_privilege('authenticated', p.oid, 'execute'),
             has_function_privilege('anon', p.oid, 'execute')
        from pg_catalog.pg_proc as p
       where p.proname = 'set_default_payment_method'
       order by p.prosecdef$$,
    $$values ('set_default_payment_method(uuid)', false, true, true, false),
             ('private.set_default_payment_method(uuid)', true, true, true, false)$$,
    'set_default_payment_method, which signed-in users call, is security invoker and calls its '
    || 'definer body in private (executable through it only: no API role may use schema private)'
);
select results_eq(
    $$select p.proname::text collate "default",
             has_function_privilege('authenticated', p.oid, 'execute'),
             has_function_privilege('service_role', p.oid, 'execute')
        from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('add_payment_method', 'set_default_payment_method',
                           'set_payment_method_verification', 'get_payment_method_details')
       order by p.proname$$,
    $$values ('add_payment_method'::text, false, true),
             ('get_payment_method_details', false, true),
             ('set_default_payment_method', true, true),
             ('set_payment_method_verification', false, true)$$,
    'service_role may call all four; a signed-in user only set_default_payment_method'
);

select * from finish();
rollback;
