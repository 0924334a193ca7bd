-- WhatsApp inbound: users and their preferences, sessions, conversations with the desk, every
-- message by wamid, statuses waiting for their message, and the transactional outbox.
-- Functions, policies and cron jobs for them are in supabase/functions-sql/50_whatsapp_*.sql.

-- users ------------------------------------------------------------------------------------------

create table public.users (
    id uuid primary key default gen_random_uuid(),
    phone_number text unique,
    wa_user_id text unique,
    display_name text,
    verified_at timestamptz,
    registered_at timestamptz not null default now(),
    last_active_at timestamptz,
    terms_accepted_at timestamptz,
    terms_version text,
    blocked_at timestamptz,
    block_reason text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
    constraint users_phone_number_e164 check (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    constraint users_wa_user_id_length check (char_length(wa_user_id) between 1 and 100),
    constraint users_display_name_length check (char_length(display_name) <= 256),
    -- Only an erased user (blocked, identifiers anonymised) has neither identifier.
    constraint users_identified check (
        phone_number is not null or wa_user_id is not null or blocked_at is not null
    ),
    constraint users_terms_versioned check ((terms_accepted_at is null) = (terms_version is null)),
    constraint users_block_explained check (blocked_at is null or block_reason is not null)
);
comment on table public.users is
'People who write to the platform on WhatsApp, found by phone number (E.164) or by the '
'business-scoped WhatsApp user id when the phone is withheld. id is the uuid an app login sees '
'as auth.uid().';
comment on column public.users.wa_user_id is
'WhatsApp''s business-scoped user id (user_id / from_user_id, e.g. RW.7047823173309372).';
create index users_last_active_at on public.users (last_active_at);
alter table public.users enable row level security;
grant select, update (display_name, terms_accepted_at, terms_version)
on public.users to authenticated;

create table public.user_preferences (
    user_id uuid primary key references public.users (id) on delete cascade,
    notification_enabled boolean not null default true,
    language text not null default 'en-GB', -- noqa: RF04
    timezone text not null default 'Europe/London',
    delay_threshold_minutes integer not null default 15,
    auto_claim_enabled boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- A BCP 47 tag as WhatsApp and browsers write them: en, en-GB, rw-RW, zh-Hant-TW.
    constraint user_preferences_language_tag check (
        language ~ '^[a-z]{2,3}(-[A-Za-z]{4})?(-([A-Z]{2}|[0-9]{3}))?$'
    ),
    constraint user_preferences_timezone_length check (char_length(timezone) between 1 and 64),
    constraint user_preferences_delay_threshold_range check (
        delay_threshold_minutes between 0 and 1440
    )
);
comment on table public.user_preferences is
'One row per user, made with the user: notifications, language, timezone, delay threshold and '
'automatic claims.';
alter table public.user_preferences enable row level security;
grant select, update (
    notification_enabled,
    language,
    timezone,
    delay_threshold_minutes,
    auto_claim_enabled
) on public.user_preferences to authenticated;

-- whatsapp_sessions ------------------------------------------------------------------------------

create table public.whatsapp_sessions (
    id uuid primary key default gen_random_uuid(),
    phone_number text unique,
    wa_user_id text unique,
    user_id uuid references public.users (id) on delete set null,
    status text not null default 'active',
    last_message_at timestamptz,
    message_count bigint not null default 0,
    error_count integer not null default 0,
    webhook_url text,
    last_heartbeat_at timestamptz,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint whatsapp_sessions_status_known check (
        status in ('active', 'inactive', 'suspended', 'expired')
    ),
    constraint whatsapp_sessions_phone_number_e164 check (
        phone_number ~ '^\+[1-9][0-9]{6,14}$'
    ),
    constraint whatsapp_sessions_identified check (
        phone_number is not null or wa_user_id is not null
    ),
    constraint whatsapp_sessions_counts_positive check (message_count >= 0 and error_count >= 0),
    constraint whatsapp_sessions_metadata_object check (jsonb_typeof(metadata) = 'object')
);
comment on table public.whatsapp_sessions is
'One per WhatsApp contact (phone number or business-scoped user id): activity, counts and '
'health. Idle sessions expire (cleanup_expired_whatsapp_sessions, a pg_cron job).';
create index whatsapp_sessions_user on public.whatsapp_sessions (user_id);
create index whatsapp_sessions_idle on public.whatsapp_sessions (last_message_at)
where status in ('active', 'inactive');
alter table public.whatsapp_sessions enable row level security;
grant select on public.whatsapp_sessions to authenticated;

-- conversation_mappings --------------------------------------------------------------------------

create table public.conversation_mappings (
    id uuid primary key default gen_random_uuid(),
    wa_id text not null,
    user_id uuid references public.users (id) on delete set null,
    conversation_id text,
    communication_id text,
    last_message_id text,
    contact_name text,
    phone_number_id text,
    display_phone_number text,
    status text not null default 'active',
    last_activity_at timestamptz not null default now(),
    last_inbound_at timestamptz,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint conversation_mappings_status_known check (
        status in ('active', 'closed', 'expired')
    ),
    constraint conversation_mappings_metadata_object check (jsonb_typeof(metadata) = 'object')
);
comment on table public.conversation_mappings is
'A contact''s conversation with the downstream desk. At most one active per contact (wa_id); '
'conversation_id stays null until the desk correlates it (correlate_conversation).';
comment on column public.conversation_mappings.wa_id is
'The contact: its WhatsApp id (phone digits), or its business-scoped user id when the phone is '
'withheld.';
comment on column public.conversation_mappings.last_inbound_at is
'When the contact last wrote: the 24-hour customer service window runs from here.';
create unique index conversation_mappings_one_active on public.conversation_mappings (wa_id)
where status = 'active';
create index conversation_mappings_wa_id on public.conversation_mappings (wa_id, created_at);
create index conversation_mappings_conversation on public.conversation_mappings (conversation_id)
where conversation_id is not null;
create index conversation_mappings_user on public.conversation_mappings (user_id);
create index conversation_mappings_idle on public.conversation_mappings (last_activity_at)
where status = 'active';
alter table public.conversation_mappings enable row level security;
grant select on public.conversation_mappings to authenticated;

-- message_tracking -------------------------------------------------------------------------------

create table public.message_tracking (
    id uuid primary key default gen_random_uuid(),
    wamid text not null unique,
    mapping_id uuid references public.conversation_mappings (id) on delete cascade,
    user_id uuid references public.users (id) on delete set null,
    direction text not null,
    provider text not null default 'meta', -- noqa: RF04
    message_type text not null,
    status text not null,
    body text,
    media jsonb,
    content jsonb, -- noqa: RF04
    context jsonb,
    error jsonb,
    provider_timestamp timestamptz,
    sent_at timestamptz,
    delivered_at timestamptz,
    read_at timestamptz,
    failed_at timestamptz,
    ignored_status_count integer not null default 0,
    correlation_id text,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint message_tracking_direction_known check (direction in ('INBOUND', 'OUTBOUND')),
    constraint message_tracking_provider_known check (provider in ('meta', 'twilio')),
    constraint message_tracking_type_known check (
        message_type in (
            'text', 'image', 'audio', 'video', 'document', 'sticker', 'location', 'contacts',
            'interactive', 'button', 'reaction', 'order', 'system', 'template', 'unsupported'
        )
    ),
    constraint message_tracking_status_known check (
        status in ('received', 'accepted', 'sent', 'delivered', 'read', 'failed')
    ),
    constraint message_tracking_wamid_length check (char_length(wamid) between 1 and 255),
    constraint message_tracking_media_object check (jsonb_typeof(media) = 'object'),
    constraint message_tracking_metadata_object check (jsonb_typeof(metadata) = 'object')
);
comment on table public.message_tracking is
'Every WhatsApp message in or out, one row per wamid (the idempotency key). Outbound statuses '
'move forward only: sent, delivered, read; failed is terminal. Late or repeated statuses change '
'nothing and are counted in ignored_status_count.';
comment on column public.message_tracking.content is
'The type''s own object as the provider sent it (location, contacts, interactive reply, '
'reaction, order, system, button), or the errors of an unsupported message.';
comment on column public.message_tracking.media is
'For media messages: id, mime_type, sha256, caption, filename (and url for Twilio).';
create index message_tracking_mapping on public.message_tracking (mapping_id, created_at);
create index message_tracking_user on public.message_tracking (user_id, created_at);
create index message_tracking_created_at on public.message_tracking using brin (created_at);
alter table public.message_tracking enable row level security;
grant select on public.message_tracking to authenticated;

-- Statuses can arrive before the outbound row they are about (the sender records the wamid after
-- the provider answered); they wait here and are applied when the row appears.
create table private.pending_message_statuses (
    wamid text not null,
    status text not null,
    provider_timestamp timestamptz,
    error jsonb,
    payload jsonb not null,
    received_at timestamptz not null default now(),
    primary key (wamid, status),
    constraint pending_message_statuses_status_known check (
        status in ('accepted', 'sent', 'delivered', 'read', 'failed')
    )
);
comment on table private.pending_message_statuses is
'Statuses for a wamid with no message_tracking row yet, one per (wamid, status); applied and '
'removed when the row is inserted.';
create index pending_message_statuses_received_at on private.pending_message_statuses (
    received_at
);

-- outbox_events ----------------------------------------------------------------------------------

create table public.outbox_events (
    id bigint generated always as identity primary key,
    aggregate_type text not null,
    aggregate_id text not null,
    event_type text not null,
    event_version text not null default '1.0',
    payload jsonb not null,
    metadata jsonb not null default '{}',
    correlation_id text,
    -- The writing transaction: a relay publishes in (txid, id) order and only below the oldest
    -- transaction still running, so no event can later appear before one already published.
    txid xid8 not null default pg_current_xact_id(),
    created_at timestamptz not null default now(),
    claimed_by text,
    claimed_until timestamptz,
    published_at timestamptz,
    constraint outbox_events_payload_object check (jsonb_typeof(payload) = 'object'),
    constraint outbox_events_metadata_object check (jsonb_typeof(metadata) = 'object'),
    constraint outbox_events_event_type_length check (char_length(event_type) between 1 and 100)
);
comment on table public.outbox_events is
'Transactional outbox: events written in the same transaction as the change they announce, '
'published by relays through claim_outbox_events and mark_outbox_published, deleted 7 days '
'after publication.';
create index outbox_events_unpublished on public.outbox_events (txid, id)
where published_at is null;
create index outbox_events_published_at on public.outbox_events (published_at)
where published_at is not null;
create index outbox_events_aggregate on public.outbox_events (aggregate_type, aggregate_id);
create index outbox_events_correlation on public.outbox_events (correlation_id)
where correlation_id is not null;
alter table public.outbox_events enable row level security;
revoke all on public.outbox_events from service_role;
grant select on public.outbox_events to service_role;
