-- Payments as analysts and users see them: daily totals per type, status and currency, and each
-- user's last 30 days.

-- No user ids or references: the analyst sees volumes, not people.
create or replace view monitoring.transaction_summary as
select
    (t.created_at at time zone 'UTC')::date as day, -- noqa: RF04
    t.type, -- noqa: RF04
    t.status,
    t.currency,
    count(*) as transaction_count,
    sum(t.amount) as total_amount,
    round(avg(t.amount), 2) as avg_amount,
    -- Of the day's transactions of this type and currency, the share that failed.
    round(
        coalesce(sum(count(*)) filter (where t.status = 'failed') over (
            partition by (t.created_at at time zone 'UTC')::date, t.type, t.currency
        ), 0)::numeric
        / sum(count(*)) over (
            partition by (t.created_at at time zone 'UTC')::date, t.type, t.currency
        ),
        4
    ) as failure_rate
from public.transactions as t
group by (t.created_at at time zone 'UTC')::date, t.type, t.status, t.currency;
comment on view monitoring.transaction_summary is
'Per UTC day, type, status and currency: how many transactions, their total and average amount, '
'and failure_rate, the share of that day''s transactions of the type and currency that failed. '
'No user ids or references.';
revoke all on monitoring.transaction_summary from public, anon, authenticated;
grant select on monitoring.transaction_summary to analyst, service_role;

create or replace view public.user_recent_transactions
with (security_invoker = true) as
select
    t.user_id,
    t.currency,
    count(*) as transaction_count,
    coalesce(sum(t.amount) filter (where t.type = 'credit'), 0) as credits,
    coalesce(sum(t.amount) filter (where t.type = 'debit'), 0) as debits,
    coalesce(sum(t.amount) filter (where t.type = 'transfer'), 0) as transfers,
    coalesce(sum(t.amount) filter (where t.type = 'payment'), 0) as payments,
    coalesce(sum(t.amount) filter (where t.type = 'refund'), 0) as refunds,
    coalesce(sum(t.amount) filter (where t.type = 'fee'), 0) as fees,
    coalesce(sum(t.amount) filter (where t.type = 'commission'), 0) as commissions,
    max(t.created_at) as last_transaction_at,
    (array_agg(t.reference order by t.created_at desc))[1] as last_reference,
    (array_agg(t.status order by t.created_at desc))[1] as last_status
from public.transactions as t
where t.created_at > now() - interval '30 days'
group by t.user_id, t.currency;
comment on view public.user_recent_transactions is
'Per user and currency over the last 30 days: how many transactions, the sum of each type, and '
'the last one (when, reference, status). security_invoker: a signed-in user sees their own '
'rows only (transactions they made; transfers received count under the sender).';
revoke all on public.user_recent_transactions from public, anon, authenticated;
grant select on public.user_recent_transactions to authenticated, service_role;
