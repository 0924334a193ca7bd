-- Wallets: reading a balance, the daily reconciliation against completed transactions, and who
-- may read wallets.

create or replace function private.caller_may_act_for(p_user_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
-- Who is calling is what the audit log says: a user acts only for their own id, anon (by its
-- claims, or a session that set the role without any) for no one, service_role and database
-- roles for anyone.
declare
    v_actor record := private.request_actor();
begin
    return coalesce(
        case v_actor.actor_type
            when 'user' then v_actor.actor_identifier = p_user_id::text
            when 'database' then v_actor.actor_identifier not in ('anon', 'authenticated')
            else v_actor.actor_type = 'service'
        end,
        false
    );
end;
$$;
comment on function private.caller_may_act_for(uuid) is
'Whether the caller may act for user p_user_id: service_role and database roles for anyone, '
'anon and authenticated (by claims or session role) only for their own JWT sub.';

-- Signed-in users call get_wallet_balance, so the RPC in public is SECURITY INVOKER (a definer
-- function an API role can reach through /rest/v1/rpc is a privilege escalation waiting for a
-- bug) and the part that reads any wallet is here, callable through it. The RPC's SQL body is
-- bound when it is created, so calling it needs EXECUTE on this function but no USAGE on
-- private: API roles still cannot name anything in private themselves.
create or replace function private.get_wallet_balance(p_user_id uuid, p_currency text)
returns numeric
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_balance numeric;
begin
    if p_user_id is null then
        raise exception 'get_wallet_balance: p_user_id must be a user id' using errcode = '22023';
    end if;
    if private.currency_minor_units(p_currency) is null then
        raise exception 'get_wallet_balance: p_currency must be an ISO 4217 code the platform '
            'handles, in capitals (got %)', coalesce(p_currency, 'null')
        using errcode = '22023';
    end if;
    -- A signed-in user asks about their own wallet only; service_role about anyone's.
    if not private.caller_may_act_for(p_user_id) then
        raise exception 'get_wallet_balance: a user may read only their own balance'
        using errcode = '42501';
    end if;
    select w.balance into v_balance
    from public.wallets as w
    where w.user_id = p_user_id and w.currency = p_currency;
    if not found then
        -- No wallet is a balance of 0 for a user, and not found for anyone else.
        perform private.require_user(p_user_id, 'get_wallet_balance');
        v_balance := 0;
    end if;
    return v_balance;
end;
$$;
comment on function private.get_wallet_balance(uuid, text) is
'The body of public.get_wallet_balance, with the rights to read any wallet; it checks who is '
'asking itself. Executable by the roles that may call the RPC, reachable only through it.';
revoke all on function private.get_wallet_balance(uuid, text) from public, anon, authenticated;
grant execute on function private.get_wallet_balance(uuid, text) to authenticated, service_role;

create or replace function public.get_wallet_balance(p_user_id uuid, p_currency text)
returns numeric
language sql
stable
set search_path = ''
return private.get_wallet_balance(p_user_id, p_currency);
comment on function public.get_wallet_balance(uuid, text) is
'The balance of user p_user_id in p_currency (0 when they have no wallet in it). A signed-in '
'user may ask only about themselves (else 42501); service_role about anyone. Unknown user '
'PT404, bad input 22023. SECURITY INVOKER; the reading is done by private.get_wallet_balance.';
revoke all on function public.get_wallet_balance(uuid, text) from public, anon, authenticated;
grant execute on function public.get_wallet_balance(uuid, text) to authenticated, service_role;

create or replace function public.reconcile_wallet_balances()
returns table (
    user_id uuid,
    currency text,
    balance numeric,
    expected numeric,
    difference numeric
)
language sql
stable
security definer
set search_path = ''
as $$
    -- One statement, one snapshot: a completion moves its transaction and its wallets together,
    -- so a consistent read of both finds no difference unless something bypassed the RPCs.
    with expected as (
        select e.user_id, t.currency, sum(e.delta) as expected
        from public.transactions as t
        cross join lateral private.transaction_effects(
            t.type, t.user_id, t.counterparty_id, t.amount
        ) as e
        where t.status = 'completed'
        group by e.user_id, t.currency
    )

    select
        coalesce(w.user_id, x.user_id),
        coalesce(w.currency, x.currency),
        coalesce(w.balance, 0),
        coalesce(x.expected, 0),
        coalesce(w.balance, 0) - coalesce(x.expected, 0)
    from public.wallets as w
    full join expected as x on w.user_id = x.user_id and w.currency = x.currency
    where coalesce(w.balance, 0) <> coalesce(x.expected, 0)
    order by 1, 2
$$;
comment on function public.reconcile_wallet_balances() is
'Recomputes every balance from completed transactions and returns the wallets that differ '
'(balance, expected, difference); none is the healthy answer. service_role only; a daily '
'pg_cron job runs it through private.reconcile_wallets().';
revoke all on function public.reconcile_wallet_balances() from public, anon, authenticated;
grant execute on function public.reconcile_wallet_balances() to service_role;

create or replace function private.reconcile_wallets()
returns integer
language plpgsql
volatile
set search_path = ''
as $$
-- A difference is an incident: the metric is what alerting watches, the outbox event carries
-- the wallets for whoever investigates.
declare
    v_differences jsonb;
    v_count integer;
begin
    select
        count(*)::integer,
        pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) order by r.user_id, r.currency)
    into v_count, v_differences
    from public.reconcile_wallet_balances() as r;
    perform public.record_metric(
        'payments', 'gauge', 'wallet_reconciliation_differences', v_count, 'count', null
    );
    if v_count > 0 then
        perform private.emit_event(
            'wallet', 'reconciliation', 'wallet.reconciliation_failed',
            pg_catalog.jsonb_build_object('differences', v_differences)
        );
        raise warning 'reconcile_wallets: % wallet(s) differ from their transactions', v_count;
    end if;
    return v_count;
end;
$$;
comment on function private.reconcile_wallets() is
'Runs reconcile_wallet_balances, records the metric payments/wallet_reconciliation_differences '
'and, when any wallet differs, the outbox event wallet.reconciliation_failed; returns the count.';

select private.schedule_cron(
    'reconcile-wallets', '17 3 * * *', 'select private.reconcile_wallets()'
);

select private.enable_audit('public.wallets');

drop policy if exists wallets_own_select on public.wallets;
create policy wallets_own_select on public.wallets
for select to authenticated
using (user_id = (select auth.uid()));
