-- ingest_whatsapp_webhook on Twilio forms (functions-sql's WhatsApp ingest): text, media,
-- location and button messages, the sender and conversation, and delivery callbacks.
-- Runs as postgres on a fresh clone, in one transaction: now() is constant, and the provider
-- timestamps are fixed (1767225600 is 2026-01-01 00:00:00 UTC). The helpers and the payloads
-- of the story are tests/sql/fixtures/whatsapp_ingest.sql.
begin;
select plan(13);

call tests.fixture('whatsapp_ingest');

-- Twilio ----------------------------------------------------------------------------------------

insert into pg_temp.payload (name, body) values
('tw-text', '{"SmsMessageSid": "SM0001", "NumMedia": "0", "ProfileName": "Tumi",
  "SmsSid": "SM0001", "WaId": "250788000010", "SmsStatus": "received", "Body": "Muraho",
  "To": "whatsapp:+15550001111", "NumSegments": "1", "MessageSid": "SM0001",
  "AccountSid": "AC1", "From": "whatsapp:+250788000010", "ApiVersion": "2010-04-01"}'),
('tw-media', '{"MessageSid": "SM0002", "SmsStatus": "received", "WaId": "250788000010",
  "ProfileName": "Tumi", "From": "whatsapp:+250788000010", "To": "whatsapp:+15550001111",
  "Body": "", "NumMedia": "2",
  "MediaUrl0": "https://api.twilio.com/Media/ME0", "MediaContentType0": "image/jpeg",
  "MediaUrl1": "https://api.twilio.com/Media/ME1", "MediaContentType1": "application/pdf"}'),
('tw-location', '{"MessageSid": "SM0003", "SmsStatus": "received", "WaId": "250788000010",
  "From": "whatsapp:+250788000010", "To": "whatsapp:+15550001111", "Body": "",
  "NumMedia": "0", "Latitude": "-1.9441", "Longitude": "30.0619",
  "Address": "KG 2 Roundabout", "Label": "Kigali Convention Centre"}'),
('tw-button', '{"MessageSid": "SM0004", "SmsStatus": "received", "WaId": "250788000010",
  "From": "whatsapp:+250788000010", "To": "whatsapp:+15550001111", "Body": "Confirm",
  "NumMedia": "0", "ButtonText": "Confirm", "ButtonPayload": "CONFIRM_42"}'),
('tw-delivered', '{"MessageSid": "SM0900", "SmsSid": "SM0900", "MessageStatus": "delivered",
  "SmsStatus": "delivered", "To": "whatsapp:+250788000010", "From": "whatsapp:+15550001111",
  "AccountSid": "AC1", "ChannelPrefix": "whatsapp", "ApiVersion": "2010-04-01"}'),
('tw-undelivered', '{"MessageSid": "SM0901", "MessageStatus": "undelivered",
  "SmsStatus": "undelivered", "ErrorCode": "63016",
  "ErrorMessage": "Outside the allowed window", "To": "whatsapp:+250788000010",
  "From": "whatsapp:+15550001111", "AccountSid": "AC1"}');

select is(
    public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-text'), 'tw-1'),
    pg_temp.summary(1, 0, 0, 0, 0),
    'a Twilio text message is stored'
);
insert into pg_temp.ids (name, id)
select 'tumi', id from public.users where phone_number = '+250788000010';
select results_eq(
    $$select provider, direction, status, message_type, body, media, content, provider_timestamp,
             user_id
      from public.message_tracking where wamid = 'SM0001'$$,
    $$values ('twilio', 'INBOUND', 'received', 'text', 'Muraho', null::jsonb, null::jsonb,
              null::timestamptz, pg_temp.uid('tumi'))$$,
    'a Twilio text is kept by MessageSid with its Body, from provider twilio'
);
select results_eq(
    $$select phone_number, wa_user_id, display_name from public.users
      where id = pg_temp.uid('tumi')$$,
    $$values ('+250788000010', null::text, 'Tumi')$$,
    'the Twilio sender is registered by the phone of From, named by ProfileName'
);
select results_eq(
    $$select wa_id, last_message_id, phone_number_id, display_phone_number, last_inbound_at
      from public.conversation_mappings where user_id = pg_temp.uid('tumi')$$,
    $$values ('250788000010', 'SM0001', 'whatsapp:+15550001111', '15550001111', now())$$,
    'the Twilio conversation is under the WaId, to the To number, last inbound now'
);
do $$
begin
    perform public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-media'), 'tw-2');
end;
$$;
select results_eq(
    $$select message_type, body, media from public.message_tracking where wamid = 'SM0002'$$,
    $$values ('image', null::text, '{"url": "https://api.twilio.com/Media/ME0",
              "mime_type": "image/jpeg", "items": [
              {"url": "https://api.twilio.com/Media/ME0", "mime_type": "image/jpeg"},
              {"url": "https://api.twilio.com/Media/ME1", "mime_type": "application/pdf"}]}'
              ::jsonb)$$,
    'Twilio media: every MediaUrl/MediaContentType as media.items, the type from the first mime'
);
do $$
begin
    perform public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-location'), 'tw-3');
end;
$$;
select results_eq(
    $$select message_type, body, content from public.message_tracking where wamid = 'SM0003'$$,
    $$values ('location', null::text, '{"latitude": "-1.9441", "longitude": "30.0619",
              "address": "KG 2 Roundabout", "name": "Kigali Convention Centre"}'::jsonb)$$,
    'a Twilio location keeps Latitude, Longitude, Address and Label as content'
);
do $$
begin
    perform public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-button'), 'tw-4');
end;
$$;
select results_eq(
    $$select message_type, body, content from public.message_tracking where wamid = 'SM0004'$$,
    $$values ('button', 'Confirm', '{"text": "Confirm", "payload": "CONFIRM_42"}'::jsonb)$$,
    'a Twilio button reply keeps ButtonText as body and ButtonPayload in content'
);
select is(
    (select message_count from public.whatsapp_sessions where user_id = pg_temp.uid('tumi')),
    4::bigint,
    'the Twilio contact has one session counting its 4 messages'
);
select is(
    (
        select sum(value) from public.system_metrics
        where service_name = 'whatsapp-ingest' and metric_name = 'messages.received'
            and tags = '{"provider": "twilio", "type": "image"}'
    ),
    1::float8,
    'Twilio messages are counted in messages.received tagged with provider twilio'
);

do $$
begin
    perform pg_temp.outbound('SM0900', 'tumi', 'send-tw-1', 'twilio');
    perform pg_temp.outbound('SM0901', 'tumi', 'send-tw-2', 'twilio');
end;
$$;
select is(
    public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-delivered'), 'tw-5'),
    pg_temp.summary(0, 0, 1, 0, 0),
    'a Twilio delivered callback is applied'
);
select results_eq(
    $$select status, delivered_at, error from public.message_tracking where wamid = 'SM0900'$$,
    $$values ('delivered', now(), null::jsonb)$$,
    'the Twilio message is delivered, at the time of the callback'
);
select is(
    public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-undelivered'), 'tw-6'),
    pg_temp.summary(0, 0, 1, 0, 0),
    'a Twilio undelivered callback is applied'
);
select results_eq(
    $$select status, failed_at, error from public.message_tracking where wamid = 'SM0901'$$,
    $$values ('failed', now(),
              '[{"code": "63016", "message": "Outside the allowed window"}]'::jsonb)$$,
    'undelivered is failed, with ErrorCode and ErrorMessage as the error'
);

select * from finish();
rollback;
