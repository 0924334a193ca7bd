-- Hosted Supabase tells PostgREST about every schema change through these event triggers; the
-- gateway listens on the same channel, so a function created by hand is callable at commit.
-- Notifications are deduplicated per transaction: a migration sends one, however long.
create or replace function extensions.pgrst_ddl_watch()
returns event_trigger
language plpgsql
set search_path = ''
as $$
begin
    perform pg_catalog.pg_notify('pgrst', 'reload schema');
end;
$$;

create or replace function extensions.pgrst_drop_watch()
returns event_trigger
language plpgsql
set search_path = ''
as $$
begin
    perform pg_catalog.pg_notify('pgrst', 'reload schema');
end;
$$;

-- Inside DO only because sqlfluff's postgres dialect cannot parse event trigger DDL.
do $$
begin
    drop event trigger if exists pgrst_ddl_watch;
    create event trigger pgrst_ddl_watch on ddl_command_end
    execute function extensions.pgrst_ddl_watch();

    drop event trigger if exists pgrst_drop_watch;
    create event trigger pgrst_drop_watch on sql_drop
    execute function extensions.pgrst_drop_watch();
end
$$;
