-- Queue tables churn: every message is inserted, updated by its claim and deleted by its ack, and
-- each ack leaves a dead entry at the head of the ready index that every claim walks past until
-- a vacuum removes it. With the defaults a backlog of 600,000 messages waits for 120,000 dead
-- rows before any are removed: claims of 10 fell from 23,000 to 12,600 messages/s within 20 s
-- (bench/queues.py). So these tables are vacuumed after a fixed number of dead rows, whatever
-- their size. The cost delay stays: unthrottled, a vacuum of a big backlog takes one of the
-- two cores from the claims it is meant to speed up.

alter table public.message_queue set (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000
);

alter table public.whatsapp_message_queue set (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000
);

alter table public.background_jobs set (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000
);
