-- The row ingest_whatsapp_webhook keeps per contact of a batch while it stores the batch's
-- messages with one statement per step (supabase/functions-sql/52_whatsapp_ingest.sql).

create type private.inbound_contact as (
    -- As the provider names the sender (Meta's from, else its user id): the conversation key.
    contact_key text,
    phone_number text,
    wa_user_id text,
    -- The latest non-null values among the contact's messages in the batch.
    contact_name text,
    phone_number_id text,
    display_phone_number text,
    last_wamid text,
    last_at timestamptz,
    message_count integer,
    -- Filled in step by step.
    user_id uuid,
    -- Resolved by a lookup or a registration in one statement for the whole batch; false sends
    -- the contact through private.find_or_register_user.
    resolved boolean,
    registered boolean,
    conversation_key text,
    mapping_id uuid
);
comment on type private.inbound_contact is
'One contact of an inbound webhook batch, with what storing its messages has found out so far.';
