-- Outbound messages that must not go out: an operator's cancel, and the erasure of their
-- recipient. A cancelled message is final and never redriven. An erased recipient's rows lose
-- their phone number, payload and provider error text; erased_at marks them, so that a send
-- already in flight is recorded without them and is never retried. Functions
-- (cancel_whatsapp_message, erase_user) are in supabase/functions-sql/ (the WhatsApp queue and
-- users files).

alter table public.whatsapp_message_queue
drop constraint whatsapp_message_queue_status_known,
add constraint whatsapp_message_queue_status_known check (
    status in ('pending', 'sent', 'failed', 'dead', 'unconfirmed', 'cancelled')
),
alter column recipient_phone drop not null,
add column cancelled_reason text,
add column erased_at timestamptz,
-- Only erasure takes the recipient away.
add constraint whatsapp_message_queue_recipient_known check (
    recipient_phone is not null or erased_at is not null
);

comment on column public.whatsapp_message_queue.status is
'pending (waiting, claimed or retrying), sent (the provider accepted it), failed (refused for '
'good), dead (retries ran out), unconfirmed (the send timed out after the request left: it may '
'or may not have gone out; not retried by itself), cancelled (by an operator or by the '
'erasure of its recipient; final, never redriven).';
comment on column public.whatsapp_message_queue.recipient_phone is
'E.164; null once the recipient was erased (erased_at).';
comment on column public.whatsapp_message_queue.cancelled_reason is
'Why a cancelled message was cancelled: the operator''s reason, or the recipient''s erasure.';
comment on column public.whatsapp_message_queue.erased_at is
'When the recipient was erased: the phone number, payload and provider error text were removed '
'then, and a send in flight at that moment is recorded without them.';

-- Erasure finds a person's outbound messages by the number they went to, also those recorded
-- before the person was a user (user_id null, no conversation).
create index message_tracking_outbound_recipient on public.message_tracking (
    (metadata ->> 'recipient_phone')
) where direction = 'OUTBOUND';

-- Erasure finds every message queued to a number, whatever its status (the lane index holds
-- pending ones only).
create index whatsapp_message_queue_recipient on public.whatsapp_message_queue (recipient_phone);
