-- Bounded input across the RPCs: every text and JSON argument an RPC stores has a size bound,
-- and every time it stores is plausible. A call over a bound is refused with 22023 naming the
-- argument ("<function>: <argument> must ...") and changes nothing; an error text a worker
-- reports about a failure is kept to its first 2000 characters instead, since refusing it would
-- lose the report. The catalog check at the end makes a new RPC fail this file until each of
-- its text and JSON arguments has a line here: a bounded call, a truncated one, or a reason it
-- is never stored. Runs as postgres on a fresh clone; each call runs in a subtransaction.
begin;

-- What the calls below need to exist: a user with a payment method, a claimed queue message, a
-- running job and a pending one.
insert into public.users (id, phone_number) values
('8e1f0a00-0000-4000-8000-000000000001', '+250788000001'),
('8e1f0a00-0000-4000-8000-000000000002', '+250788000002');
create temporary table setup as
select
    (
        public.add_payment_method('8e1f0a00-0000-4000-8000-000000000001', 'cash', 'mtn')
    ).id as payment_method_id,
    public.enqueue_message('bounds', 'x') as message_id,
    public.schedule_job('bounds', null) as running_job_id,
    public.schedule_job('bounds-pending', null) as pending_job_id;
create temporary table claimed_message as select * from public.claim_messages('bounds', 1, 300);
create temporary table claimed_job as select * from public.claim_jobs(array['bounds'], 1);

-- An argument over its bound, in an otherwise valid call: refused with 22023, the message naming
-- the argument (or, for WhatsApp payloads checked field by field, the field).
create temporary table bounded (
    function_name text not null,
    argument text not null,
    call text not null,
    named text
);
insert into bounded (function_name, argument, call, named) values
-- metrics
('record_metric', 'p_service_name', $$select public.record_metric(repeat('x', 101), 'gauge', 'm', 1)$$, null),
('record_metric', 'p_metric_type', $$select public.record_metric('s', repeat('x', 201), 'm', 1)$$, null),
('record_metric', 'p_metric_name', $$select public.record_metric('s', 'gauge', repeat('x', 201), 1)$$, null),
('record_metric', 'p_unit', $$select public.record_metric('s', 'gauge', 'm', 1, repeat('x', 33))$$, null),
('record_metric', 'p_tags', $$select public.record_metric('s', 'gauge', 'm', 1, null, jsonb_build_object('t', repeat('x', 2048)))$$, null),
('record_metrics', 'p_metrics', $$select public.record_metrics((select jsonb_agg(jsonb_build_object('service_name', 's', 'metric_type', 'gauge', 'metric_name', 'm', 'value', 1)) from generate_series(1, 10001)))$$, null),
('record_metrics', 'p_metrics', $$select public.record_metrics(jsonb_build_array(jsonb_build_object('service_name', 's', 'metric_type', 'gauge', 'metric_name', 'm', 'value', 1, 'tags', jsonb_build_object('t', repeat('x', 2048)))))$$, null),
-- audit
('log_audit_event', 'p_actor_type', $$select public.log_audit_event(repeat('x', 201), 'a', 'a', 'r')$$, null),
('log_audit_event', 'p_actor_identifier', $$select public.log_audit_event('service', repeat('x', 201), 'a', 'r')$$, null),
('log_audit_event', 'p_action', $$select public.log_audit_event('service', 'a', repeat('x', 101), 'r')$$, null),
('log_audit_event', 'p_resource_type', $$select public.log_audit_event('service', 'a', 'a', repeat('x', 101))$$, null),
('log_audit_event', 'p_resource_id', $$select public.log_audit_event('service', 'a', 'a', 'r', repeat('x', 201))$$, null),
('log_audit_event', 'p_metadata', $$select public.log_audit_event('service', 'a', 'a', 'r', null, jsonb_build_object('m', repeat('x', 16384)))$$, null),
('log_audit_event', 'p_correlation_id', $$select public.log_audit_event('service', 'a', 'a', 'r', null, null, repeat('x', 201))$$, null),
-- outbox
('claim_outbox_events', 'p_worker', $$select public.claim_outbox_events(1, repeat('x', 201))$$, null),
('mark_outbox_published', 'p_worker', $$select public.mark_outbox_published('{}', repeat('x', 201))$$, null),
-- WhatsApp sessions
('update_whatsapp_session_activity', 'p_phone_number', $$select public.update_whatsapp_session_activity(repeat('1', 10000))$$, null),
('correlate_conversation', 'p_wa_id', $$select public.correlate_conversation(repeat('1', 201), 'c')$$, null),
('correlate_conversation', 'p_conversation_id', $$select public.correlate_conversation('250788000001', repeat('x', 101))$$, null),
('correlate_conversation', 'p_communication_id', $$select public.correlate_conversation('250788000001', 'c', repeat('x', 101))$$, null),
-- WhatsApp webhook (and its dead letters)
('ingest_whatsapp_webhook', 'p_provider', $$select public.ingest_whatsapp_webhook(repeat('x', 201), '{}')$$, null),
('ingest_whatsapp_webhook', 'p_payload', $$select public.ingest_whatsapp_webhook('twilio', jsonb_build_object('Body', repeat('x', 8388608)))$$, null),
('ingest_whatsapp_webhook', 'p_correlation_id', $$select public.ingest_whatsapp_webhook('twilio', '{}', repeat('x', 201))$$, null),
('dead_letter_whatsapp_webhook', 'p_provider', $$select public.dead_letter_whatsapp_webhook(repeat('x', 201), '\x00', 'd')$$, null),
('dead_letter_whatsapp_webhook', 'p_body', $$select public.dead_letter_whatsapp_webhook('meta', convert_to(repeat('x', 8388609), 'UTF8'), 'd')$$, null),
('dead_letter_whatsapp_webhook', 'p_detail', $$select public.dead_letter_whatsapp_webhook('meta', '\x00', repeat('x', 2001))$$, null),
('dead_letter_whatsapp_webhook', 'p_sqlstate', $$select public.dead_letter_whatsapp_webhook('meta', '\x00', 'd', repeat('x', 201))$$, null),
('dead_letter_whatsapp_webhook', 'p_correlation_id', $$select public.dead_letter_whatsapp_webhook('meta', '\x00', 'd', null, repeat('x', 201))$$, null),
('list_whatsapp_dead_letters', 'p_state', $$select public.list_whatsapp_dead_letters(repeat('x', 201))$$, null),
('discard_whatsapp_dead_letter', 'p_note', $$select public.discard_whatsapp_dead_letter(1, repeat('x', 501))$$, null),
-- users
('issue_otp', 'p_phone_number', $$select public.issue_otp(repeat('1', 10000))$$, null),
('verify_otp', 'p_phone_number', $$select public.verify_otp(repeat('1', 10000), '123456')$$, null),
('verify_otp', 'p_code', $$select public.verify_otp('+250788000001', repeat('1', 10000))$$, null),
-- message queue
('enqueue_message', 'p_queue_name', $$select public.enqueue_message(repeat('x', 64), 'x')$$, null),
('enqueue_message', 'p_message_type', $$select public.enqueue_message('q', repeat('x', 101))$$, null),
('enqueue_message', 'p_payload', $$select public.enqueue_message('q', 'x', jsonb_build_object('p', repeat('x', 65536)))$$, null),
('enqueue_message', 'p_idempotency_key', $$select public.enqueue_message('q', 'x', '{}', 5, null, repeat('x', 256))$$, null),
('claim_messages', 'p_queue_name', $$select public.claim_messages(repeat('x', 64))$$, null),
('claim_messages', 'p_worker_id', $$select public.claim_messages('q', 1, 30, repeat('x', 201))$$, null),
('ack_message', 'p_worker_id', $$select public.ack_message(1, repeat('x', 201))$$, null),
('ack_messages', 'p_worker_id', $$select public.ack_messages('{1}', repeat('x', 201))$$, null),
('nack_message', 'p_worker_id', $$select public.nack_message(1, null, null, repeat('x', 201))$$, null),
('redrive_dead_messages', 'p_queue_name', $$select public.redrive_dead_messages(repeat('x', 64))$$, null),
-- background jobs
('schedule_job', 'p_job_type', $$select public.schedule_job(repeat('x', 101), null)$$, null),
('schedule_job', 'p_job_name', $$select public.schedule_job('t', repeat('x', 201))$$, null),
('schedule_job', 'p_payload', $$select public.schedule_job('t', null, jsonb_build_object('p', repeat('x', 65536)))$$, null),
('schedule_job', 'p_idempotency_key', $$select public.schedule_job('t', null, '{}', null, 5, repeat('x', 256))$$, null),
('claim_jobs', 'p_job_types', $$select public.claim_jobs(array[repeat('x', 101)])$$, null),
('claim_jobs', 'p_job_types', $$select public.claim_jobs((select array_agg(g::text) from generate_series(1, 101) as g))$$, null),
('claim_jobs', 'p_worker_id', $$select public.claim_jobs(null, 1, repeat('x', 201))$$, null),
('complete_job', 'p_result', $$select public.complete_job(1, jsonb_build_object('r', repeat('x', 65536)))$$, null),
('complete_job', 'p_worker_id', $$select public.complete_job(1, null, repeat('x', 201))$$, null),
('fail_job', 'p_worker_id', $$select public.fail_job(1, 'e', true, repeat('x', 201))$$, null),
-- WhatsApp queue
('enqueue_whatsapp_message', 'p_recipient_phone', $$select public.enqueue_whatsapp_message(repeat('1', 10000), 'template', '{"name": "hello", "language": {"code": "en"}}')$$, null),
('enqueue_whatsapp_message', 'p_message_type', $$select public.enqueue_whatsapp_message('+250788000001', repeat('x', 101), '{}')$$, 'message_type'),
('enqueue_whatsapp_message', 'p_payload', $$select public.enqueue_whatsapp_message('+250788000001', 'template', jsonb_build_object('name', repeat('x', 65536)))$$, 'payload'),
('enqueue_whatsapp_message', 'p_correlation_id', $$select public.enqueue_whatsapp_message('+250788000001', 'template', '{"name": "hello", "language": {"code": "en"}}', 5, repeat('x', 201))$$, null),
('enqueue_whatsapp_message', 'p_idempotency_key', $$select public.enqueue_whatsapp_message('+250788000001', 'template', '{"name": "hello", "language": {"code": "en"}}', 5, null, null, repeat('x', 256))$$, null),
('claim_whatsapp_messages', 'p_worker_id', $$select public.claim_whatsapp_messages(1, 60, repeat('x', 201))$$, null),
('record_whatsapp_sends', 'p_results', $$select public.record_whatsapp_sends((select jsonb_agg(jsonb_build_object('id', g, 'outcome', 'released')) from generate_series(1, 1001) as g))$$, null),
('record_whatsapp_sends', 'p_results', $$select public.record_whatsapp_sends(jsonb_build_array(jsonb_build_object('id', 1, 'outcome', 'failed', 'error_code', repeat('x', 101))))$$, null),
('pause_whatsapp_queue', 'p_reason', $$select public.pause_whatsapp_queue(repeat('x', 2001))$$, null),
('pause_whatsapp_queue', 'p_error_code', $$select public.pause_whatsapp_queue('r', repeat('x', 101))$$, null),
('pause_whatsapp_queue', 'p_paused_by', $$select public.pause_whatsapp_queue('r', null, repeat('x', 201))$$, null),
('cancel_whatsapp_message', 'p_reason', $$select public.cancel_whatsapp_message(1, repeat('x', 501))$$, null),
('whatsapp_sender_heartbeat', 'p_worker_id', $$select public.whatsapp_sender_heartbeat(repeat('x', 201), 'h', 1, 'meta', 40)$$, null),
('whatsapp_sender_heartbeat', 'p_host', $$select public.whatsapp_sender_heartbeat('w', repeat('x', 256), 1, 'meta', 40)$$, null),
('whatsapp_sender_heartbeat', 'p_provider', $$select public.whatsapp_sender_heartbeat('w', 'h', 1, repeat('x', 51), 40)$$, null),
('redrive_whatsapp_messages', 'p_status', $$select public.redrive_whatsapp_messages(repeat('x', 201))$$, null),
-- feature flags
('is_feature_enabled', 'p_flag_key', $$select public.is_feature_enabled(repeat('x', 201))$$, null),
('is_feature_enabled', 'p_user_id', $$select public.is_feature_enabled('f', repeat('x', 201))$$, null),
('is_feature_enabled', 'p_environment', $$select public.is_feature_enabled('f', null, repeat('x', 201))$$, null),
('is_feature_enabled', 'p_context', $$select public.is_feature_enabled('f', null, 'production', jsonb_build_object('c', repeat('x', 16384)))$$, null),
('feature_flag_details', 'p_flag_key', $$select public.feature_flag_details(repeat('x', 201))$$, null),
('feature_flag_details', 'p_user_id', $$select public.feature_flag_details('f', repeat('x', 201))$$, null),
('feature_flag_details', 'p_environment', $$select public.feature_flag_details('f', null, repeat('x', 201))$$, null),
('feature_flag_details', 'p_context', $$select public.feature_flag_details('f', null, 'production', jsonb_build_object('c', repeat('x', 16384)))$$, null),
('evaluate_feature_flags', 'p_user_id', $$select public.evaluate_feature_flags(repeat('x', 201))$$, null),
('evaluate_feature_flags', 'p_environment', $$select public.evaluate_feature_flags(null, repeat('x', 201))$$, null),
('evaluate_feature_flags', 'p_context', $$select public.evaluate_feature_flags(null, 'production', jsonb_build_object('c', repeat('x', 16384)))$$, null),
('upsert_feature_flag', 'p_key', $$select public.upsert_feature_flag(repeat('x', 201), 'n', true)$$, null),
('upsert_feature_flag', 'p_name', $$select public.upsert_feature_flag('k', repeat('x', 201), true)$$, null),
('upsert_feature_flag', 'p_rollout_strategy', $$select public.upsert_feature_flag('k', 'n', true, repeat('x', 201))$$, null),
('upsert_feature_flag', 'p_environment', $$select public.upsert_feature_flag('k', 'n', true, 'all', repeat('x', 201))$$, null),
('upsert_feature_flag', 'p_target_users', $$select public.upsert_feature_flag('k', 'n', true, 'user_list', 'all', 0, array[repeat('x', 201)])$$, null),
('upsert_feature_flag', 'p_conditions', $$select public.upsert_feature_flag('k', 'n', true, 'all', 'all', 0, '{}', (select jsonb_agg(jsonb_build_object('contextName', 'appName', 'operator', 'IN', 'values', jsonb_build_array(repeat('x', 100)))) from generate_series(1, 700)))$$, null),
('upsert_feature_flag', 'p_description', $$select public.upsert_feature_flag('k', 'n', true, 'all', 'all', 0, '{}', '[]', repeat('x', 2001))$$, null),
('upsert_feature_flag', 'p_group_id', $$select public.upsert_feature_flag('k', 'n', true, 'all', 'all', 0, '{}', '[]', null, repeat('x', 101))$$, null),
('delete_feature_flag', 'p_key', $$select public.delete_feature_flag(repeat('x', 201), 'all')$$, null),
('delete_feature_flag', 'p_environment', $$select public.delete_feature_flag('k', repeat('x', 21))$$, null),
-- transactions
('create_transaction', 'p_type', $$select public.create_transaction('8e1f0a00-0000-4000-8000-000000000001', repeat('x', 201), 1, 'RWF')$$, null),
('create_transaction', 'p_currency', $$select public.create_transaction('8e1f0a00-0000-4000-8000-000000000001', 'credit', 1, repeat('x', 201))$$, null),
('create_transaction', 'p_idempotency_key', $$select public.create_transaction('8e1f0a00-0000-4000-8000-000000000001', 'credit', 1, 'RWF', repeat('x', 256))$$, null),
('create_transaction', 'p_metadata', $$select public.create_transaction('8e1f0a00-0000-4000-8000-000000000001', 'credit', 1, 'RWF', null, jsonb_build_object('m', repeat('x', 16384)))$$, null),
('update_transaction_status', 'p_new_status', $$select public.update_transaction_status(gen_random_uuid(), repeat('x', 201))$$, null),
('update_transaction_status', 'p_error_message', $$select public.update_transaction_status(gen_random_uuid(), 'failed', repeat('x', 2001))$$, null),
('update_transaction_status', 'p_reason', $$select public.update_transaction_status(gen_random_uuid(), 'failed', null, repeat('x', 2001))$$, null),
('transfer_funds', 'p_currency', $$select public.transfer_funds('8e1f0a00-0000-4000-8000-000000000001', '8e1f0a00-0000-4000-8000-000000000002', 1, repeat('x', 201))$$, null),
('transfer_funds', 'p_idempotency_key', $$select public.transfer_funds('8e1f0a00-0000-4000-8000-000000000001', '8e1f0a00-0000-4000-8000-000000000002', 1, 'RWF', repeat('x', 256))$$, null),
('transfer_funds', 'p_metadata', $$select public.transfer_funds('8e1f0a00-0000-4000-8000-000000000001', '8e1f0a00-0000-4000-8000-000000000002', 1, 'RWF', null, jsonb_build_object('m', repeat('x', 16384)))$$, null),
-- wallets, payment methods
('get_wallet_balance', 'p_currency', $$select public.get_wallet_balance('8e1f0a00-0000-4000-8000-000000000001', repeat('x', 201))$$, null),
('add_payment_method', 'p_method_type', $$select public.add_payment_method('8e1f0a00-0000-4000-8000-000000000001', repeat('x', 201), 'mtn')$$, null),
('add_payment_method', 'p_provider', $$select public.add_payment_method('8e1f0a00-0000-4000-8000-000000000001', 'cash', repeat('x', 51))$$, null),
('add_payment_method', 'p_account_details', $$select public.add_payment_method('8e1f0a00-0000-4000-8000-000000000001', 'cash', 'mtn', jsonb_build_object('d', repeat('x', 4096)))$$, null),
('set_payment_method_verification', 'p_verification_status', $$select public.set_payment_method_verification((select payment_method_id from setup), repeat('x', 201))$$, null),
-- service registry
('register_service', 'p_service_name', $$select public.register_service(repeat('x', 101), 't', '1', null, null, '[]')$$, null),
('register_service', 'p_service_type', $$select public.register_service('s', repeat('x', 51), '1', null, null, '[]')$$, null),
('register_service', 'p_version', $$select public.register_service('s', 't', repeat('x', 51), null, null, '[]')$$, null),
('register_service', 'p_endpoint', $$select public.register_service('s', 't', '1', repeat('x', 2049), null, '[]')$$, null),
('register_service', 'p_health_check_url', $$select public.register_service('s', 't', '1', null, repeat('x', 2049), '[]')$$, null),
('register_service', 'p_capabilities', $$select public.register_service('s', 't', '1', null, null, jsonb_build_array(repeat('x', 8192)))$$, null),
('register_service', 'p_dependencies', $$select public.register_service('s', 't', '1', null, null, '[]', array[repeat('x', 101)])$$, null),
('register_service', 'p_instance_id', $$select public.register_service('s', 't', '1', null, null, '[]', null, repeat('x', 201))$$, null),
('service_heartbeat', 'p_service_name', $$select public.service_heartbeat(repeat('x', 101))$$, null),
('service_heartbeat', 'p_status', $$select public.service_heartbeat('s', repeat('x', 101))$$, null),
('service_heartbeat', 'p_metrics', $$select public.service_heartbeat('s', 'healthy', jsonb_build_object('m', repeat('x', 8192)))$$, null),
('service_heartbeat', 'p_instance_id', $$select public.service_heartbeat('s', 'healthy', null, repeat('x', 201))$$, null),
('find_service_instances', 'p_service_name', $$select public.find_service_instances(repeat('x', 101))$$, null),
('find_service_instances', 'p_capability', $$select public.find_service_instances(null, repeat('x', 101))$$, null),
-- event store
('append_event', 'p_aggregate_id', $$select public.append_event(repeat('x', 201), 'trip', 'e', '{}')$$, null),
('append_event', 'p_aggregate_type', $$select public.append_event('t', repeat('x', 201), 'e', '{}')$$, null),
('append_event', 'p_event_type', $$select public.append_event('t', 'trip', repeat('x', 201), '{}')$$, null),
('append_event', 'p_payload', $$select public.append_event('t', 'trip', 'e', jsonb_build_object('p', repeat('x', 65536)))$$, null),
('append_event', 'p_correlation_id', $$select public.append_event('t', 'trip', 'e', '{}', repeat('x', 201))$$, null),
('append_event', 'p_metadata', $$select public.append_event('t', 'trip', 'e', '{}', null, jsonb_build_object('m', repeat('x', 8192)))$$, null),
('append_event', 'p_causation_id', $$select public.append_event('t', 'trip', 'e', '{}', null, null, null, null, repeat('x', 201))$$, null),
('append_events', 'p_aggregate_id', $$select public.append_events(repeat('x', 201), 'trip', '[{"event_type": "e", "payload": {}}]')$$, null),
('append_events', 'p_aggregate_type', $$select public.append_events('t', repeat('x', 201), '[{"event_type": "e", "payload": {}}]')$$, null),
('append_events', 'p_events', $$select public.append_events('t', 'trip', (select jsonb_agg(jsonb_build_object('event_type', 'e', 'payload', jsonb_build_object('p', repeat('x', 60000)))) from generate_series(1, 18)))$$, null),
('append_events', 'p_events', $$select public.append_events('t', 'trip', jsonb_build_array(jsonb_build_object('event_type', 'e', 'payload', jsonb_build_object('p', repeat('x', 65536)))))$$, null),
('append_events', 'p_events', $$select public.append_events('t', 'trip', jsonb_build_array(jsonb_build_object('event_type', 'e', 'payload', '{}'::jsonb, 'metadata', jsonb_build_object('m', repeat('x', 8192)))))$$, null),
('append_events', 'p_events', $$select public.append_events('t', 'trip', jsonb_build_array(jsonb_build_object('event_type', repeat('x', 201), 'payload', '{}'::jsonb)))$$, null),
('append_events', 'p_events', $$select public.append_events('t', 'trip', jsonb_build_array(jsonb_build_object('event_type', 'e', 'payload', '{}'::jsonb, 'causation_id', repeat('x', 201))))$$, null),
('append_events', 'p_correlation_id', $$select public.append_events('t', 'trip', '[{"event_type": "e", "payload": {}}]', null, repeat('x', 201))$$, null),
('get_aggregate_events', 'p_aggregate_type', $$select public.get_aggregate_events(repeat('x', 201), 't')$$, null),
('get_aggregate_events', 'p_aggregate_id', $$select public.get_aggregate_events('trip', repeat('x', 201))$$, null),
('load_aggregate', 'p_aggregate_type', $$select public.load_aggregate(repeat('x', 201), 't')$$, null),
('load_aggregate', 'p_aggregate_id', $$select public.load_aggregate('trip', repeat('x', 201))$$, null),
('save_snapshot', 'p_aggregate_type', $$select public.save_snapshot(repeat('x', 201), 't', 1, '{}')$$, null),
('save_snapshot', 'p_aggregate_id', $$select public.save_snapshot('trip', repeat('x', 201), 1, '{}')$$, null),
('save_snapshot', 'p_state', $$select public.save_snapshot('trip', 't', 1, jsonb_build_object('s', repeat('x', 1048576)))$$, null),
('read_all_events', 'p_aggregate_types', $$select public.read_all_events(0, 10, array[repeat('x', 201)])$$, null),
('read_all_events', 'p_aggregate_types', $$select public.read_all_events(0, 10, (select array_agg(g::text) from generate_series(1, 101) as g))$$, null),
('read_subscription', 'p_name', $$select public.read_subscription(repeat('x', 201))$$, null),
('ack_subscription', 'p_name', $$select public.ack_subscription(repeat('x', 201), 0)$$, null),
-- cache
('set_cache', 'p_key', $$select public.set_cache(repeat('x', 513), '{}')$$, null),
('set_cache', 'p_value', $$select public.set_cache('k', jsonb_build_object('v', repeat('x', 1048576)))$$, null),
('set_cache', 'p_cache_type', $$select public.set_cache('k', '{}', 60, repeat('x', 101))$$, null),
('set_cache', 'p_tags', $$select public.set_cache('k', '{}', 60, 'general', array[repeat('x', 101)])$$, null),
('set_cache', 'p_tags', $$select public.set_cache('k', '{}', 60, 'general', (select array_agg(g::text) from generate_series(1, 21) as g))$$, null),
('get_cache', 'p_key', $$select public.get_cache(repeat('x', 513))$$, null),
('get_cache', 'p_cache_type', $$select public.get_cache('k', repeat('x', 101))$$, null),
('invalidate_cache_by_tag', 'p_tag', $$select public.invalidate_cache_by_tag(repeat('x', 101))$$, null),
-- route cache
('cache_route', 'p_profile', $$select public.cache_route(-1.95, 30.06, -1.96, 30.07, repeat('x', 41), '_p~iF~ps|U_ulLnnqC', 1, 1)$$, null),
('cache_route', 'p_encoded_polyline', $$select public.cache_route(-1.95, 30.06, -1.96, 30.07, 'driving', repeat('?', 65537), 1, 1)$$, null),
('cache_route', 'p_provider', $$select public.cache_route(-1.95, 30.06, -1.96, 30.07, 'driving', '_p~iF~ps|U_ulLnnqC', 1, 1, 1, 60, repeat('x', 101))$$, null),
('get_cached_route', 'p_profile', $$select public.get_cached_route(-1.95, 30.06, -1.96, 30.07, 60, repeat('x', 41))$$, null),
-- locations
('save_location', 'p_location_type', $$select public.save_location('8e1f0a00-0000-4000-8000-000000000001', repeat('x', 201), -1.95, 30.06)$$, null),
('save_location', 'p_place_name', $$select public.save_location('8e1f0a00-0000-4000-8000-000000000001', 'home', -1.95, 30.06, repeat('x', 201))$$, null),
('save_location', 'p_address', $$select public.save_location('8e1f0a00-0000-4000-8000-000000000001', 'home', -1.95, 30.06, null, repeat('x', 501))$$, null),
('save_location', 'p_place_id', $$select public.save_location('8e1f0a00-0000-4000-8000-000000000001', 'home', -1.95, 30.06, null, null, repeat('x', 201))$$, null),
('save_location', 'p_city', $$select public.save_location('8e1f0a00-0000-4000-8000-000000000001', 'home', -1.95, 30.06, null, null, null, repeat('x', 101))$$, null),
('save_location', 'p_country', $$select public.save_location('8e1f0a00-0000-4000-8000-000000000001', 'home', -1.95, 30.06, null, null, null, null, repeat('x', 201))$$, null),
('find_nearby_locations', 'p_location_type', $$select public.find_nearby_locations(-1.95, 30.06, 3000, repeat('x', 201))$$, null);

-- An error text a worker reports: its first 2000 characters are kept. `kept` reads back the
-- stored length.
create temporary table truncated (
    function_name text not null,
    argument text not null,
    call text not null,
    kept text not null
);
insert into truncated (function_name, argument, call, kept) values
('nack_message', 'p_error', $$select public.nack_message((select message_id from setup), repeat('x', 3000))$$, $$select char_length(last_error) from public.message_queue where id = (select message_id from setup)$$),
('fail_job', 'p_error', $$select public.fail_job((select running_job_id from setup), repeat('x', 3000), false)$$, $$select char_length(last_error) from public.background_jobs where id = (select running_job_id from setup)$$),
('cancel_job', 'p_reason', $$select public.cancel_job((select pending_job_id from setup), repeat('x', 3000))$$, $$select char_length(last_error) from public.background_jobs where id = (select pending_job_id from setup)$$);

-- Arguments that are never stored, each with the reason; keep this list short.
create temporary table not_stored (
    function_name text not null,
    argument text not null,
    reason text not null
);
insert into not_stored (function_name, argument, reason) values
('record_whatsapp_sends', 'p_worker_id', 'compared with claimed_by to ignore results of lost claims; never stored');

-- A time an RPC stores: refused unless finite and within a year of now. %L is the time.
-- accepted_ahead: how far ahead a time is still taken (a device's fix time only minutes: one from
-- the future would make every true report after it look older).
create temporary table timed (
    function_name text not null,
    argument text not null,
    call text not null,
    accepted_ahead interval not null default interval '11 months'
);
insert into timed (function_name, argument, call) values
('enqueue_message', 'p_scheduled_at', $$select public.enqueue_message('q', 'x', '{}', 5, %L)$$),
('schedule_job', 'p_scheduled_at', $$select public.schedule_job('t', null, '{}', %L)$$),
('enqueue_whatsapp_message', 'p_scheduled_at', $$select public.enqueue_whatsapp_message('+250788000001', 'template', '{"name": "hello", "language": {"code": "en"}}', 5, null, %L)$$);
insert into timed (function_name, argument, call, accepted_ahead) values
('update_current_location', 'p_recorded_at', $$select public.update_current_location('8e1f0a00-0000-4000-8000-000000000001', -1.95, 30.06, p_recorded_at => %L)$$, interval '4 minutes'),
('save_location', 'p_recorded_at', $$select public.save_location('8e1f0a00-0000-4000-8000-000000000001', 'pickup', -1.95, 30.06, p_recorded_at => %L)$$, interval '4 minutes');

create temporary table implausible (label text not null, at timestamptz not null);
insert into implausible (label, at) values
('infinity', 'infinity'),
('-infinity', '-infinity'),
('year 9999', '9999-12-31 23:59:59+00'),
('year 1', '0001-01-01 00:00:00+00'),
('13 months ahead', now() + interval '13 months'),
('13 months ago', now() - interval '13 months');

select plan(
    (select count(*)::integer from bounded)
    + (select count(*)::integer from truncated)
    + (select count(*)::integer from timed) * ((select count(*)::integer from implausible) + 1)
    + 3
);

-- What a call raised, as "SQLSTATE message"; "accepted" when it raised nothing (and then it is
-- rolled back all the same).
create function pg_temp.outcome(p_call text)
returns text
language plpgsql
as $$
begin
    begin
        execute p_call;
    exception when others then
        return sqlstate || ' ' || sqlerrm;
    end;
    raise exception 'accepted' using errcode = 'ZZ001';
exception when sqlstate 'ZZ001' then
    return 'accepted';
end;
$$;

select matches(
    pg_temp.outcome(b.call),
    format('^22023 %s: %s\M', b.function_name, coalesce(b.named, b.argument)),
    format('%s refuses an oversized %s with 22023 naming it', b.function_name, b.argument)
)
from bounded as b
order by b.function_name, b.argument;

create function pg_temp.kept_length(p_call text, p_kept text)
returns integer
language plpgsql
as $$
declare
    v_length integer;
begin
    execute p_call;
    execute p_kept into v_length;
    return v_length;
end;
$$;

select is(
    pg_temp.kept_length(t.call, t.kept),
    2000,
    format('%s keeps the first 2000 characters of a longer %s', t.function_name, t.argument)
)
from truncated as t
order by t.function_name;

select matches(
    pg_temp.outcome(format(t.call, i.at)),
    format('^22023 %s: %s must be a time within a year of now', t.function_name, t.argument),
    format('%s refuses %s %s', t.function_name, t.argument, i.label)
)
from timed as t
cross join implausible as i
order by t.function_name, i.label;
select is(
    pg_temp.outcome(format(t.call, now() + t.accepted_ahead)),
    'accepted',
    format('%s takes %s %s ahead', t.function_name, t.argument, t.accepted_ahead)
)
from timed as t
order by t.function_name;

-- The catalog: every text or JSON argument of every function in public that an API role may
-- execute is bounded, truncated or not stored; every timestamptz one is checked for plausibility.
create temporary view rpc_arguments as
select
    p.proname::text as function_name,
    a.name as argument,
    a.type
from pg_catalog.pg_proc as p
cross join lateral unnest(
    coalesce(p.proallargtypes, p.proargtypes::oid []),
    p.proargnames,
    coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs]))
) as a (type, name, mode)
where p.pronamespace = 'public'::regnamespace
    and a.mode in ('i', 'b', 'v')
    and exists (
        select from (values ('anon'), ('authenticated'), ('service_role')) as r (rolname)
        where has_function_privilege(r.rolname, p.oid, 'execute')
    );

select is_empty(
    $$select a.function_name, a.argument from rpc_arguments as a
       where a.type in (
           'text'::regtype, 'varchar'::regtype, 'jsonb'::regtype, 'json'::regtype, 'bytea'::regtype,
           'text[]'::regtype, 'varchar[]'::regtype, 'jsonb[]'::regtype, 'json[]'::regtype
       )
      except
      select b.function_name, b.argument from bounded as b
      except
      select t.function_name, t.argument from truncated as t
      except
      select n.function_name, n.argument from not_stored as n
      order by 1, 2$$,
    'every text and JSON argument of every RPC is bounded, truncated or listed as not stored'
);
select is_empty(
    $$select a.function_name, a.argument from rpc_arguments as a
       where a.type in ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
      except
      select t.function_name, t.argument from timed as t
      order by 1, 2$$,
    'every time argument of every RPC is checked for plausibility'
);
select is_empty(
    $$select function_name, argument from bounded
      union all select function_name, argument from truncated
      union all select function_name, argument from not_stored
      union all select function_name, argument from timed
      except
      select function_name, argument from rpc_arguments
      order by 1, 2$$,
    'every argument named here is one an RPC has (a renamed argument is noticed)'
);

select * from finish();
rollback;
