-- Webhook dead letters: what a signed provider webhook carried that cannot be stored (a message
-- without an id, a sender that is not a phone number, a body that is not JSON) is kept here whole
-- instead of being refused, because a provider retries a refused webhook for days and the good
-- messages beside it would never be stored. Functions (the writer, list, retry, discard, erasure,
-- purge) and the monitoring view are in supabase/functions-sql/ under whatsapp_dead_letters.

create table private.whatsapp_dead_letters (
    id bigint generated always as identity primary key,
    provider text not null, -- noqa: RF04
    -- What raw holds: one message or one status (with what it needs to be read again: Meta's
    -- change metadata and the sender's contact entry), or the whole request body.
    kind text not null,
    -- The seed's DLQ reasons: invalid_payload (its shape is wrong), database_error (a statement
    -- refused it).
    reason text not null,
    detail text not null,
    sqlstate text,
    wamid text,
    -- The sender as the provider wrote it, so erasure finds the row.
    contact text,
    raw jsonb, -- noqa: RF04
    -- A body that is not JSON, or JSON Postgres cannot hold, exactly as it was signed.
    raw_body bytea,
    correlation_id text,
    -- sha256 of provider, kind and raw: the same thing delivered again is one row, seen twice.
    fingerprint bytea not null unique,
    times_seen integer not null default 1,
    received_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    retry_count integer not null default 0,
    last_retry_at timestamptz,
    -- stored (a retry stored it), duplicate (it was stored meanwhile), discarded (an operator
    -- gave up on it); null while it waits.
    resolution text,
    resolved_at timestamptz,
    resolution_note text,
    constraint whatsapp_dead_letters_provider_known check (provider in ('meta', 'twilio')),
    constraint whatsapp_dead_letters_kind_known check (kind in ('message', 'status', 'payload')),
    constraint whatsapp_dead_letters_reason_known check (
        reason in ('invalid_payload', 'database_error')
    ),
    constraint whatsapp_dead_letters_detail_length check (
        char_length(detail) between 1 and 2000
    ),
    constraint whatsapp_dead_letters_sqlstate_form check (sqlstate ~ '^[0-9A-Z]{5}$'),
    constraint whatsapp_dead_letters_wamid_length check (char_length(wamid) between 1 and 255),
    constraint whatsapp_dead_letters_contact_length check (char_length(contact) between 1 and 255),
    constraint whatsapp_dead_letters_correlation_id_length check (
        char_length(correlation_id) between 1 and 200
    ),
    constraint whatsapp_dead_letters_raw_kept check ((raw is null) <> (raw_body is null)),
    constraint whatsapp_dead_letters_body_is_payload check (raw_body is null or kind = 'payload'),
    constraint whatsapp_dead_letters_resolution_known check (
        resolution in ('stored', 'duplicate', 'discarded')
    ),
    constraint whatsapp_dead_letters_resolved_when check (
        (resolution is null) = (resolved_at is null)
    ),
    constraint whatsapp_dead_letters_note_length check (
        char_length(resolution_note) between 1 and 500
    ),
    constraint whatsapp_dead_letters_counts_positive check (times_seen >= 1 and retry_count >= 0)
);
comment on table private.whatsapp_dead_letters is
'What signed WhatsApp webhooks carried that could not be stored, kept whole with provider, '
'reason, detail, SQLSTATE and correlation id: a message, a status or the whole body. The webhook '
'was answered 200 (a provider retries anything else for days). Listed, retried and discarded '
'through service_role RPCs; erased with the user; resolved rows are purged after 30 days.';
comment on column private.whatsapp_dead_letters.raw is
'Meta: the change value with this one message or status, its metadata and the sender''s contact '
'entry; Twilio: the form fields; a payload: the whole body when it is JSON.';
comment on column private.whatsapp_dead_letters.raw_body is
'The request body exactly as signed, when it is not JSON Postgres can hold.';

create index whatsapp_dead_letters_open on private.whatsapp_dead_letters (id)
where resolution is null;
create index whatsapp_dead_letters_contact on private.whatsapp_dead_letters (contact);

alter table private.whatsapp_dead_letters enable row level security;
revoke all on private.whatsapp_dead_letters from public, anon, authenticated, service_role;
