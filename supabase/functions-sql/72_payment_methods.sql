-- Payment methods: account details encrypted under private keys, masked labels for display,
-- one default per user, verification, audited decryption and key rotation.

create or replace function private.payment_details_problem(p_method_type text, p_details jsonb)
returns text
language sql
immutable
set search_path = ''
as $$
    select case
        when pg_catalog.jsonb_typeof(p_details) is distinct from 'object'
            then 'p_account_details must be a JSON object'
        -- Encrypted and kept for as long as the method: the fields a type needs are short.
        when pg_catalog.octet_length(p_details::text) > 4096
            then 'p_account_details must be at most 4096 bytes of JSON'
        -- Already E.164: what private.normalize_phone makes of it is the number itself.
        when p_method_type = 'mobile_money'
            and private.normalize_phone(p_details ->> 'phone_number')
            is distinct from coalesce(p_details ->> 'phone_number', '')
            then 'p_account_details.phone_number must be an E.164 phone number'
        when p_method_type = 'card'
            and coalesce(p_details ->> 'number', '') !~ '^[0-9]{12,19}$'
            then 'p_account_details.number must be 12 to 19 digits'
        when p_method_type = 'card'
            and coalesce(p_details ->> 'expiry', '') !~ '^(0[1-9]|1[0-2])/[0-9]{2}$'
            then 'p_account_details.expiry must be MM/YY'
        when p_method_type = 'bank_account'
            and coalesce(p_details ->> 'account_number', '') !~ '^[0-9A-Za-z]{4,34}$'
            then 'p_account_details.account_number must be 4 to 34 letters or digits'
        when p_method_type = 'wallet'
            and coalesce(pg_catalog.char_length(p_details ->> 'account_id'), 0) not between 4 and 100
            then 'p_account_details.account_id must be 4 to 100 characters'
    end
$$;
comment on function private.payment_details_problem(text, jsonb) is
'Why p_details are not account details of a p_method_type method (null when they are): '
'mobile_money needs phone_number (E.164), card number and expiry (MM/YY), bank_account '
'account_number, wallet account_id; cash needs nothing.';

create or replace function private.payment_masked_label(
    p_method_type text,
    p_provider text,
    p_details jsonb
)
returns text
language sql
immutable
set search_path = ''
as $$
    -- The provider and the last four characters of the account, never more of it; the field
    -- is the one the method's type requires, whatever else the details hold.
    select case p_method_type
        when 'cash' then p_provider
        else pg_catalog.upper(p_provider) || ' **** ' || pg_catalog.right(
            p_details ->> case p_method_type
                when 'mobile_money' then 'phone_number'
                when 'card' then 'number'
                when 'bank_account' then 'account_number'
                when 'wallet' then 'account_id'
            end,
            4
        )
    end
$$;
comment on function private.payment_masked_label(text, text, jsonb) is
'The label a user sees for a method: the provider and the account''s last 4 characters, e.g. '
'"MTN **** 4567"; cash shows the provider alone.';

create or replace function private.current_payment_method_key()
returns private.payment_method_keys
language sql
stable
set search_path = ''
as $$
    select k from private.payment_method_keys as k where k.retired_at is null
$$;
comment on function private.current_payment_method_key() is
'The key new account details are encrypted under (the one not retired).';

create or replace function private.payment_method_secret(p_key_id text)
returns text
language plpgsql
stable
set search_path = ''
as $$
-- Vault is Supabase's; locally there is none, and the secret is in the row. The Vault query is
-- planned only when the schema exists, so this compiles on both.
declare
    v_secret text;
begin
    select k.secret into v_secret from private.payment_method_keys as k where k.key_id = p_key_id;
    if v_secret is null and pg_catalog.to_regclass('vault.decrypted_secrets') is not null then
        select s.decrypted_secret into v_secret
        from vault.decrypted_secrets as s
        where s.name = 'payment_method_key:' || p_key_id;
    end if;
    if v_secret is null then
        raise exception 'payment method key % has no secret (neither in '
            'private.payment_method_keys nor in Vault as payment_method_key:%)', p_key_id, p_key_id
        using errcode = '55000';
    end if;
    return v_secret;
end;
$$;
comment on function private.payment_method_secret(text) is
'The secret of payment method key p_key_id: its row''s, else the Vault secret named '
'payment_method_key:<key_id>; 55000 when there is neither.';

create or replace function private.lock_payment_methods_of(p_user_id uuid)
returns void
language sql
volatile
set search_path = ''
as $$
    -- One lock per user, taken before any of their rows: adds and default flips for one user
    -- take turns (also their first default, when there is no row to lock yet), and nothing
    -- holds a row while waiting for it.
    select pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended('payment_methods:' || p_user_id::text, 0)
    )
$$;
comment on function private.lock_payment_methods_of(uuid) is
'Takes the transaction-scoped lock that serialises changes to user p_user_id''s payment methods.';

create or replace function private.payment_method_caller(p_payment_method_id uuid, p_function text)
returns public.payment_methods
language plpgsql
volatile
set search_path = ''
as $$
-- service_role may act on any method, a signed-in user on their own; to a stranger a method
-- that is not theirs does not exist. The user's lock is taken, then the row is read again.
declare
    v_user_id uuid;
    v_method public.payment_methods;
begin
    if p_payment_method_id is null then
        raise exception '%: p_payment_method_id must be a payment method id', p_function
        using errcode = '22023';
    end if;
    select m.user_id into v_user_id from public.payment_methods as m
    where m.id = p_payment_method_id;
    if not found or not private.caller_may_act_for(v_user_id) then
        raise exception '%: no payment method %', p_function, p_payment_method_id
        using errcode = 'PT404';
    end if;
    perform private.lock_payment_methods_of(v_user_id);
    select m.* into v_method from public.payment_methods as m where m.id = p_payment_method_id;
    if not found then
        raise exception '%: no payment method %', p_function, p_payment_method_id
        using errcode = 'PT404';
    end if;
    return v_method;
end;
$$;
comment on function private.payment_method_caller(uuid, text) is
'Payment method p_payment_method_id, with its user''s lock taken, if the caller may act on it '
'(service_role: any; a signed-in user: their own); else PT404 as if it did not exist.';

create or replace function private.payment_method_shown(p_method public.payment_methods)
returns public.payment_methods
language plpgsql
immutable
set search_path = ''
as $$
begin
    p_method.account_details := null;
    p_method.key_id := null;
    return p_method;
end;
$$;
comment on function private.payment_method_shown(public.payment_methods) is
'Payment method p_method as the RPCs return it: without the ciphertext and its key id.';

create or replace function public.add_payment_method(
    p_user_id uuid,
    p_method_type text,
    p_provider text,
    p_account_details jsonb default '{}',
    p_is_default boolean default false
)
returns public.payment_methods
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_key private.payment_method_keys := private.current_payment_method_key();
    v_problem text;
    v_method public.payment_methods;
begin
    if p_user_id is null then
        raise exception 'add_payment_method: p_user_id must be a user id' using errcode = '22023';
    end if;
    if p_method_type is null
        or p_method_type not in ('card', 'mobile_money', 'bank_account', 'wallet', 'cash') then
        raise exception 'add_payment_method: p_method_type must be card, mobile_money, '
            'bank_account, wallet or cash (got %)', coalesce(p_method_type, 'null')
        using errcode = '22023';
    end if;
    if p_provider is null or pg_catalog.char_length(p_provider) not between 1 and 50 then
        raise exception 'add_payment_method: p_provider must be 1 to 50 characters'
        using errcode = '22023';
    end if;
    v_problem := private.payment_details_problem(p_method_type, p_account_details);
    if v_problem is not null then
        raise exception 'add_payment_method: %', v_problem using errcode = '22023';
    end if;
    perform private.lock_living_user(p_user_id, 'add_payment_method');

    perform private.lock_payment_methods_of(p_user_id);
    if coalesce(p_is_default, false) then
        update public.payment_methods as m set is_default = false
        where m.user_id = p_user_id and m.is_default;
    end if;
    insert into public.payment_methods (
        user_id, method_type, provider, masked_label, account_details, key_id, is_default
    )
    values (
        p_user_id,
        p_method_type,
        p_provider,
        private.payment_masked_label(p_method_type, p_provider, p_account_details),
        extensions.pgp_sym_encrypt(
            p_account_details::text,
            private.payment_method_secret(v_key.key_id),
            'cipher-algo=aes256'
        ),
        v_key.key_id,
        coalesce(p_is_default, false)
    )
    returning * into v_method;
    return private.payment_method_shown(v_method);
end;
$$;
comment on function public.add_payment_method(uuid, text, text, jsonb, boolean) is
'Adds a payment method of p_method_type (card, mobile_money, bank_account, wallet, cash) with '
'p_provider (1 to 50 characters) for user p_user_id; p_account_details (checked per type, at '
'most 4 KB) are stored encrypted and '
'shown only as the masked label. With p_is_default it replaces the user''s default. Returns the '
'method without its details. Bad input 22023, unknown user PT404, erased user PT410. '
'service_role only.';
revoke all on function public.add_payment_method(uuid, text, text, jsonb, boolean)
from public, anon, authenticated;
grant execute on function public.add_payment_method(uuid, text, text, jsonb, boolean)
to service_role;

-- Signed-in users call it: the RPC is SECURITY INVOKER and its body a definer function here,
-- as get_wallet_balance's (the wallets file says why).
create or replace function private.set_default_payment_method(p_payment_method_id uuid)
returns public.payment_methods
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_method public.payment_methods := private.payment_method_caller(
        p_payment_method_id, 'set_default_payment_method'
    );
begin
    -- Under the user's lock (taken by payment_method_caller) the one-default index never sees
    -- two: the old default goes first.
    update public.payment_methods as m set is_default = false
    where m.user_id = v_method.user_id and m.is_default and m.id <> v_method.id;
    update public.payment_methods as m set is_default = true
    where m.id = v_method.id and not m.is_default;
    select m.* into v_method from public.payment_methods as m where m.id = v_method.id;
    return private.payment_method_shown(v_method);
end;
$$;
comment on function private.set_default_payment_method(uuid) is
'The body of public.set_default_payment_method, with the rights to change any method; it checks '
'who is asking itself. Executable by the roles that may call the RPC, reachable only through it.';
revoke all on function private.set_default_payment_method(uuid)
from public, anon, authenticated;
grant execute on function private.set_default_payment_method(uuid) to authenticated, service_role;

create or replace function public.set_default_payment_method(p_payment_method_id uuid)
returns public.payment_methods
language sql
volatile
set search_path = ''
return private.set_default_payment_method(p_payment_method_id);
comment on function public.set_default_payment_method(uuid) is
'Makes p_payment_method_id its user''s default and the previous default not, atomically. The '
'owner (authenticated) or service_role; anyone else PT404. Returns the method without its '
'details. SECURITY INVOKER; the change is made by private.set_default_payment_method.';
revoke all on function public.set_default_payment_method(uuid) from public, anon, authenticated;
grant execute on function public.set_default_payment_method(uuid) to authenticated, service_role;

create or replace function public.set_payment_method_verification(
    p_payment_method_id uuid,
    p_verification_status text
)
returns public.payment_methods
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_method public.payment_methods := private.payment_method_caller(
        p_payment_method_id, 'set_payment_method_verification'
    );
begin
    if p_verification_status is null
        or p_verification_status not in ('unverified', 'pending', 'verified', 'failed') then
        raise exception 'set_payment_method_verification: p_verification_status must be '
            'unverified, pending, verified or failed (got %)',
            coalesce(p_verification_status, 'null')
        using errcode = '22023';
    end if;
    update public.payment_methods as m
    set
        verification_status = p_verification_status,
        verified_at = case
            when p_verification_status = 'verified' then coalesce(m.verified_at, pg_catalog.now())
        end
    where m.id = v_method.id
    returning m.* into v_method;
    return private.payment_method_shown(v_method);
end;
$$;
comment on function public.set_payment_method_verification(uuid, text) is
'Sets the verification status (unverified, pending, verified, failed) of p_payment_method_id. '
'Bad status 22023, unknown method PT404. service_role only.';
revoke all on function public.set_payment_method_verification(uuid, text)
from public, anon, authenticated;
grant execute on function public.set_payment_method_verification(uuid, text) to service_role;

create or replace function public.get_payment_method_details(p_payment_method_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_method public.payment_methods := private.payment_method_caller(
        p_payment_method_id, 'get_payment_method_details'
    );
    v_actor record := private.request_actor();
begin
    -- Every read of the plain details leaves a trace, whoever asked and why.
    perform public.log_audit_event(
        v_actor.actor_type,
        v_actor.actor_identifier,
        'payment_method.details_read',
        'public.payment_methods',
        v_method.id::text,
        pg_catalog.jsonb_build_object('user_id', v_method.user_id, 'key_id', v_method.key_id)
    );
    return extensions.pgp_sym_decrypt(
        v_method.account_details,
        private.payment_method_secret(v_method.key_id)
    )::jsonb;
end;
$$;
comment on function public.get_payment_method_details(uuid) is
'The decrypted account details of p_payment_method_id; each call is recorded in '
'system_audit_logs (payment_method.details_read). Unknown method PT404. service_role only.';
revoke all on function public.get_payment_method_details(uuid) from public, anon, authenticated;
grant execute on function public.get_payment_method_details(uuid) to service_role;

create or replace function private.rotate_payment_method_key(p_new_key_id text)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
-- Run by an operator as the database owner. Old keys stay (retired) until no row names them,
-- so a rotation that stops half-way loses nothing.
declare
    v_old private.payment_method_keys := private.current_payment_method_key();
    v_new private.payment_method_keys;
    v_in_vault boolean := false;
    v_moved integer;
begin
    if pg_catalog.to_regclass('vault.decrypted_secrets') is not null then
        v_in_vault := exists (
            select from vault.decrypted_secrets as s
            where s.name = 'payment_method_key:' || p_new_key_id
        );
    end if;
    update private.payment_method_keys as k set retired_at = pg_catalog.now()
    where k.retired_at is null;
    -- A Vault secret made for this key id is used; else the key is made here.
    insert into private.payment_method_keys (key_id, secret)
    values (
        p_new_key_id,
        case
            when not v_in_vault
                then pg_catalog.encode(extensions.gen_random_bytes(32), 'base64')
        end
    )
    returning * into v_new;
    update public.payment_methods as m
    set
        account_details = extensions.pgp_sym_encrypt(
            extensions.pgp_sym_decrypt(
                m.account_details, private.payment_method_secret(m.key_id)
            ),
            private.payment_method_secret(v_new.key_id),
            'cipher-algo=aes256'
        ),
        key_id = v_new.key_id
    where m.key_id <> v_new.key_id;
    get diagnostics v_moved = row_count;
    delete from private.payment_method_keys as k
    where k.retired_at is not null
        and not exists (select from public.payment_methods as m where m.key_id = k.key_id);
    raise notice 'rotate_payment_method_key: % re-encrypted from % and older to %',
        v_moved, v_old.key_id, v_new.key_id;
    return v_moved;
end;
$$;
comment on function private.rotate_payment_method_key(text) is
'Makes p_new_key_id the current key (the Vault secret payment_method_key:<p_new_key_id> if '
'there is one, else a fresh random key kept in private.payment_method_keys), re-encrypts every '
'payment method under it, drops the keys no row uses any more, and returns how many moved.';

create or replace trigger payment_methods_updated_at
before update on public.payment_methods
for each row execute function private.set_updated_at();

select private.enable_audit('public.payment_methods', array['account_details']);

drop policy if exists payment_methods_own_select on public.payment_methods;
create policy payment_methods_own_select on public.payment_methods
for select to authenticated
using (user_id = (select auth.uid()));
