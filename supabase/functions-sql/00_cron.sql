-- pg_cron jobs are declared here and in each domain's file through private.schedule_cron, so the
-- same files apply to a database without pg_cron (the job is then skipped with a notice).

create or replace function private.schedule_cron(
    p_job_name text,
    p_schedule text,
    p_command text
)
returns bigint
language plpgsql
set search_path = ''
as $$
begin
    if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
        raise notice 'pg_cron is not installed: job % not scheduled', p_job_name;
        return null;
    end if;
    -- cron.schedule replaces the job of the same name and owner, so re-applying is idempotent.
    return cron.schedule(p_job_name, p_schedule, p_command);
end;
$$;
comment on function private.schedule_cron(text, text, text) is
'Schedules (or reschedules) a named pg_cron job when pg_cron is installed; returns its id, or '
'null where there is no pg_cron.';

create or replace function private.unschedule_cron(p_job_name text)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
        return false;
    end if;
    -- cron.unschedule raises for a name it does not know: a retired job is gone after the first
    -- apply, and every later apply must pass.
    if not exists (
        select from cron.job as j
        where j.jobname = p_job_name and j.username = current_user
    ) then
        return false;
    end if;
    return cron.unschedule(p_job_name);
end;
$$;
comment on function private.unschedule_cron(text) is
'Unschedules the named pg_cron job of the current user when there is one (a job a file no longer '
'declares); returns whether one went.';

create or replace function private.purge_cron_history(p_keep interval default '14 days')
returns bigint
language plpgsql
set search_path = ''
as $$
declare
    v_deleted bigint;
begin
    -- pg_cron never trims cron.job_run_details itself; every run of every job adds a row.
    -- A run cut short by a restart has no end_time: its start dates it.
    delete from cron.job_run_details
    where coalesce(end_time, start_time) < pg_catalog.now() - p_keep;
    get diagnostics v_deleted = row_count;
    return v_deleted;
end;
$$;
comment on function private.purge_cron_history(interval) is
'Deletes pg_cron run history older than p_keep (default 14 days); returns how many rows went.';

select private.schedule_cron(
    'purge-cron-history', '23 3 * * *', 'select private.purge_cron_history()'
);
