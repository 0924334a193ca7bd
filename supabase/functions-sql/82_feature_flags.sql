-- Feature flags: evaluation (is_feature_enabled, evaluate_feature_flags) with Unleash's semantics,
-- management (upsert_feature_flag, delete_feature_flag), who got which answer, and the table's
-- triggers and policies. The Unleash rules themselves (MurmurHash3, the normalised hash, the
-- constraint operators) are in feature_flag_rules.

-- A bad constraint is refused when it is written, by whoever writes it (the RPC or the table's
-- owner), not discovered at evaluation, where it would turn a flag silently off. The check
-- lives here, beside the function it calls (migrations run before functions exist).
alter table public.feature_flags drop constraint if exists feature_flags_conditions_valid;
alter table public.feature_flags add constraint feature_flags_conditions_valid check (
    private.unleash_constraints_fault(conditions) is null
);

create or replace trigger feature_flags_updated_at
before update on public.feature_flags
for each row execute function private.set_updated_at();

create or replace function private.feature_flags_announce_change()
returns trigger
language plpgsql
set search_path = ''
as $$
-- Every change, by the RPCs or by hand, tells caches to drop the flag.
declare
    v_flag public.feature_flags := coalesce(new, old);
begin
    perform private.emit_event(
        'feature_flag',
        v_flag.key || ':' || v_flag.environment,
        'feature_flag.changed',
        pg_catalog.jsonb_build_object(
            'key', v_flag.key,
            'environment', v_flag.environment,
            'operation', pg_catalog.lower(tg_op),
            'enabled', case when tg_op <> 'DELETE' then new.enabled end,
            'rollout_strategy', case when tg_op <> 'DELETE' then new.rollout_strategy end
        ),
        private.request_correlation_id()
    );
    return null;
end;
$$;
comment on function private.feature_flags_announce_change() is
'AFTER trigger on feature_flags: emits feature_flag.changed {key, environment, operation, '
'enabled, rollout_strategy} for every insert, update and delete.';

create or replace trigger feature_flags_changed
after insert or update or delete on public.feature_flags
for each row execute function private.feature_flags_announce_change();

select private.enable_audit('public.feature_flags');

create or replace function private.feature_flags_keep_counters()
returns trigger
language plpgsql
set search_path = ''
as $$
-- Each flag row has two counters, counters.feature_flag_<id>_evaluations and
-- counters.feature_flag_<id>_evaluations_on (how many of them were on), made with the row and
-- dropped with it (a flag made again counts from zero under its new id).
begin
    if tg_op = 'INSERT' then
        perform private.make_counter(
            'feature_flag_' || new.id || '_evaluations',
            pg_catalog.format('Evaluations of feature flag %s in %s.', new.key, new.environment)
        );
        perform private.make_counter(
            'feature_flag_' || new.id || '_evaluations_on',
            pg_catalog.format(
                'Evaluations of feature flag %s in %s that were on.', new.key, new.environment
            )
        );
    else
        perform private.drop_counter('feature_flag_' || old.id || '_evaluations');
        perform private.drop_counter('feature_flag_' || old.id || '_evaluations_on');
    end if;
    return null;
end;
$$;
comment on function private.feature_flags_keep_counters() is
'AFTER INSERT OR DELETE trigger on feature_flags: makes or drops the row''s two counters '
'(feature_flag_<id>_evaluations and feature_flag_<id>_evaluations_on).';

create or replace trigger feature_flags_counters
after insert or delete on public.feature_flags
for each row execute function private.feature_flags_keep_counters();

-- Evaluation ------------------------------------------------------------------------------------

create or replace function private.feature_flag_context(
    p_function text,
    p_user_id text,
    p_environment text,
    p_context jsonb
)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
-- Unleash's context for one evaluation, with the call's fallbacks, and who may ask: a signed-in
-- user for themselves only (the JWT's sub is their user id), anon for no user (its flags are
-- those that target none), service_role and database roles for anyone.
declare
    v_actor record := private.request_actor();
    v_user_id text := p_user_id;
    v_context jsonb := coalesce(p_context, '{}');
begin
    if p_environment is null or p_environment not in ('development', 'staging', 'production') then
        raise exception '%: p_environment must be development, staging or production (got %)',
            p_function, private.quoted_for_error(p_environment, 20)
        using errcode = '22023';
    end if;
    -- The argument helpers' checks, inline where they pass: this runs on every evaluation.
    if pg_catalog.char_length(p_user_id) not between 1 and 200 then
        perform private.require_identifier(p_user_id, p_function, 'p_user_id');
    end if;
    if p_context is not null and (
        pg_catalog.jsonb_typeof(p_context) <> 'object'
        or pg_catalog.octet_length(p_context::text) > 16384
    ) then
        perform private.require_json_object(p_context, p_function, 'p_context');
        perform private.require_json_size(p_context, 16384, p_function, 'p_context');
    end if;

    if v_actor.actor_type = 'user' then
        if p_user_id is distinct from v_actor.actor_identifier and p_user_id is not null then
            raise exception '%: a user may evaluate flags only for themselves', p_function
            using errcode = '42501';
        end if;
        v_user_id := v_actor.actor_identifier;
    elsif v_actor.actor_type = 'anonymous'
        or (v_actor.actor_type = 'database' and v_actor.actor_identifier = 'anon') then
        if p_user_id is not null then
            raise exception '%: anon evaluates flags for no user; sign in to pass p_user_id',
                p_function
            using errcode = '42501';
        end if;
        v_context := v_context - 'userId';
    end if;

    -- p_user_id wins over the context's userId; environment falls back to the call, and a
    -- missing currentTime is now() where the rules read it (not written here: most
    -- evaluations read no time).
    if v_user_id is not null then
        v_context := v_context || pg_catalog.jsonb_build_object('userId', v_user_id);
    end if;
    if not v_context ? 'environment' then
        v_context := v_context || pg_catalog.jsonb_build_object('environment', p_environment);
    end if;
    return v_context;
end;
$$;
comment on function private.feature_flag_context(text, text, text, jsonb) is
'Unleash''s context for an evaluation by p_function: p_context with userId from p_user_id (or '
'the signed-in user) and environment filled in when absent (currentTime is now() in the '
'rules); 42501 when the caller may not evaluate for that user, 22023 for a bad argument.';

create or replace function private.feature_flag_decision(
    p_flag public.feature_flags,
    p_context jsonb
)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
-- Unleash's strategies, as the seed names them: percentage is flexibleRollout (stickiness by
-- userId, else sessionId, else off below 100%), user_list is userWithId, condition and all are
-- default;
-- a flag's conditions are the strategy's constraints.
declare
    v_stickiness text;
begin
    if p_flag.key is null or not p_flag.enabled or p_flag.rollout_strategy = 'none' then
        return false;
    end if;
    if not private.unleash_constraints_hold(p_flag.conditions, p_context) then
        return false;
    end if;
    case p_flag.rollout_strategy
        when 'all', 'condition' then
            return true;
        when 'user_list' then
            return coalesce(p_context ->> 'userId' = any(p_flag.target_users), false);
        else
            v_stickiness := coalesce(p_context ->> 'userId', p_context ->> 'sessionId');
            -- With neither id Unleash draws a random number: at 100% that is everyone, and
            -- below it an answer nobody could reproduce, so off.
            if v_stickiness is null then
                return p_flag.rollout_percentage = 100;
            end if;
            -- Unleash's normalizedHash, spelt out: the call of a SQL function costs more.
            return p_flag.rollout_percentage > 0
                and private.murmur3_32(coalesce(p_flag.group_id, p_flag.key) || ':' || v_stickiness)
                % 100 + 1 <= p_flag.rollout_percentage;
    end case;
end;
$$;
comment on function private.feature_flag_decision(public.feature_flags, jsonb) is
'Whether flag p_flag is on for Unleash context p_context (false for a flag that is null, '
'disabled or none).';

create or replace function private.record_feature_flag_answers(
    p_environment text,
    p_context jsonb,
    p_flag_ids bigint[],
    p_flag_keys text[],
    p_answers boolean[]
)
returns void
language plpgsql
volatile
set search_path = ''
as $$
-- The answers one subject (userId, else sessionId) just got, for one flag or every flag.
-- Counted on each flag's counters (evaluations first, evaluations_on second: the sampler reads
-- them the other way round, so a sample never has more on than evaluations). An answer is written
-- only when it is new or changed: a repeated one costs a read of the subject's answers by the
-- primary key, and rows are per subject, so no evaluation waits on another user's. A read-only
-- transaction (an RPC called by GET) records nothing.
declare
    v_subject text := coalesce(p_context ->> 'userId', p_context ->> 'sessionId');
begin
    if pg_catalog.current_setting('transaction_read_only') = 'on' then
        return;
    end if;
    -- One flag (is_feature_enabled, the hot path) without the statements a set needs: the
    -- counters' sequences directly, and a repeated answer found by the primary key before any
    -- insert.
    if pg_catalog.cardinality(p_flag_ids) = 1 then
        perform pg_catalog.nextval(
            ('counters.feature_flag_' || p_flag_ids[1] || '_evaluations')::regclass
        );
        if p_answers[1] then
            perform pg_catalog.nextval(
                ('counters.feature_flag_' || p_flag_ids[1] || '_evaluations_on')::regclass
            );
        end if;
    else
        perform
            pg_catalog.nextval(('counters.feature_flag_' || a.id || '_evaluations')::regclass),
            case
                when a.enabled
                    then pg_catalog.nextval(
                        ('counters.feature_flag_' || a.id || '_evaluations_on')::regclass
                    )
            end
        from rows from (
            pg_catalog.unnest(p_flag_ids), pg_catalog.unnest(p_answers)
        ) as a (id, enabled);
    end if;
    if v_subject is null or pg_catalog.char_length(v_subject) not between 1 and 200 then
        return;
    end if;
    if pg_catalog.cardinality(p_flag_keys) = 1 then
        perform from public.feature_flag_evaluations as k
        where k.subject = v_subject and k.environment = p_environment
            and k.flag_key = p_flag_keys[1] and k.enabled = p_answers[1];
        if found then
            return;
        end if;
    end if;
    insert into public.feature_flag_evaluations as e (flag_key, environment, subject, enabled)
    select a.flag_key, p_environment, v_subject, a.enabled
    from rows from (
        pg_catalog.unnest(p_flag_keys), pg_catalog.unnest(p_answers)
    ) as a (flag_key, enabled)
    left join (
        select
            k.flag_key,
            k.enabled
        from public.feature_flag_evaluations as k
        where k.subject = v_subject and k.environment = p_environment
    ) as k on a.flag_key = k.flag_key
    where k.enabled is distinct from a.enabled
    order by a.flag_key
    on conflict (flag_key, environment, subject) do update
        set enabled = excluded.enabled, since = pg_catalog.now()
        where e.enabled is distinct from excluded.enabled;
end;
$$;
comment on function private.record_feature_flag_answers(text, jsonb, bigint[], text[], boolean[]) is
'Counts the evaluations of flag rows p_flag_ids (and which were on), and records the answers '
'p_answers to flags p_flag_keys that the subject of p_context (userId, else sessionId) got, '
'when they are new or changed.';

create or replace function private.count_unknown_feature_flag(p_flag_key text, p_environment text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
-- Callers default an unknown flag to off, so a misspelt key would fail silently: each
-- evaluation of one is a metric (an append, no lock), visible per key.
begin
    if pg_catalog.current_setting('transaction_read_only') = 'on' then
        return;
    end if;
    insert into public.system_metrics (service_name, metric_type, metric_name, value, tags)
    values (
        'feature-flags', 'counter', 'evaluations.unknown_key', 1,
        pg_catalog.jsonb_build_object(
            'key', pg_catalog.left(p_flag_key, 100), 'environment', p_environment
        )
    );
end;
$$;
comment on function private.count_unknown_feature_flag(text, text) is
'Counts an evaluation of a flag key that does not exist in system_metrics '
'(feature-flags / evaluations.unknown_key, tagged with the key).';

create or replace function private.answer_feature_flag(
    p_function text,
    p_flag_key text,
    p_user_id text,
    p_environment text,
    p_context jsonb,
    out enabled boolean,
    out flag public.feature_flags
)
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- One flag for one caller, by is_feature_enabled and feature_flag_details (p_function): the
-- answer and the row that gave it (null for an unknown key).
declare
    v_context jsonb := private.feature_flag_context(
        p_function, p_user_id, p_environment, p_context
    );
begin
    if pg_catalog.char_length(p_flag_key) not between 1 and 200 or p_flag_key is null then
        perform private.require_length(p_flag_key, 1, 200, p_function, 'p_flag_key');
    end if;
    -- The row for the environment asked wins over the one for all of them: 'all' sorts below
    -- every environment's name, so the unique index read backwards gives the winner first,
    -- with no sort.
    select f.* into flag
    from public.feature_flags as f
    where f.key = p_flag_key and (f.environment = p_environment or f.environment = 'all')
    order by f.environment desc
    limit 1;
    if not found then
        perform private.count_unknown_feature_flag(p_flag_key, p_environment);
        enabled := false;
        return;
    end if;
    enabled := private.feature_flag_decision(flag, v_context);
    perform private.record_feature_flag_answers(
        p_environment, v_context, array[flag.id], array[p_flag_key], array[enabled]
    );
end;
$$;
comment on function private.answer_feature_flag(text, text, text, text, jsonb) is
'The body of public.is_feature_enabled and public.feature_flag_details, with the rights to read '
'every flag; it checks who is asking itself. Executable by the roles that may call the RPCs, '
'reachable only through them.';
revoke all on function private.answer_feature_flag(text, text, text, text, jsonb)
from public, anon, authenticated;
grant execute on function private.answer_feature_flag(text, text, text, text, jsonb)
to anon, authenticated, service_role;

create or replace function public.is_feature_enabled(
    p_flag_key text,
    p_user_id text default null,
    p_environment text default 'production',
    p_context jsonb default null
)
returns boolean
language sql
volatile
set search_path = ''
return (
    private.answer_feature_flag(
        'is_feature_enabled', p_flag_key, p_user_id, p_environment, p_context
    )
).enabled;
comment on function public.is_feature_enabled(text, text, text, jsonb) is
'Whether flag p_flag_key is on for user p_user_id in p_environment (development, staging or '
'production; default production), with Unleash''s semantics: disabled, unknown (counted) or none '
'false; all true; percentage Unleash''s gradual rollout by userId, else the context''s '
'sessionId, else false (true at 100%); user_list the target users; conditions (Unleash '
'constraints) must all hold on p_context (Unleash''s context: userId, sessionId, '
'remoteAddress, environment, appName, currentTime, properties). A signed-in user may ask only '
'for themselves (the JWT sub; another p_user_id is 42501); anon for no user. Bad arguments '
'22023. SECURITY INVOKER.';
revoke all on function public.is_feature_enabled(text, text, text, jsonb)
from public, anon, authenticated;
grant execute on function public.is_feature_enabled(text, text, text, jsonb)
to anon, authenticated, service_role;

create or replace function public.feature_flag_details(
    p_flag_key text,
    p_user_id text default null,
    p_environment text default 'production',
    p_context jsonb default null
)
returns jsonb
language sql
volatile
set search_path = ''
-- A SQL-standard body is bound when it is made: callers need no USAGE on private.
-- OpenFeature's reasons: a provider must tell a flag that is off from one that does not exist.
-- The parameters are not columns of the one table here (sqlfluff's RF03 takes them for some).
-- noqa: disable=RF03
return (
    select
        pg_catalog.jsonb_build_object(
            'key', p_flag_key,
            'found', (a.flag).id is not null,
            'enabled', a.enabled,
            'environment', (a.flag).environment,
            'reason', case
                when (a.flag).id is null then 'ERROR'
                when not (a.flag).enabled then 'DISABLED'
                when (a.flag).rollout_strategy = 'percentage' then 'SPLIT'
                when
                    (a.flag).rollout_strategy = 'user_list'
                    or pg_catalog.jsonb_array_length((a.flag).conditions) > 0
                    then 'TARGETING_MATCH'
                else 'STATIC'
            end
        )
    from private.answer_feature_flag(
        'feature_flag_details', p_flag_key, p_user_id, p_environment, p_context
    ) as a
);
-- noqa: enable=RF03
comment on function public.feature_flag_details(text, text, text, jsonb) is
'is_feature_enabled with its why, for SDK providers: {key, found, enabled, environment (of the '
'row that answered), reason}: found false for an unknown key (reason ERROR); reason DISABLED, '
'SPLIT (percentage), TARGETING_MATCH (user list or conditions) or STATIC (all, none), as '
'OpenFeature names them. The same callers and refusals as is_feature_enabled. SECURITY INVOKER.';
revoke all on function public.feature_flag_details(text, text, text, jsonb)
from public, anon, authenticated;
grant execute on function public.feature_flag_details(text, text, text, jsonb)
to anon, authenticated, service_role;

create or replace function private.evaluate_feature_flags(
    p_user_id text,
    p_environment text,
    p_context jsonb
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_context jsonb := private.feature_flag_context(
        'evaluate_feature_flags', p_user_id, p_environment, p_context
    );
    v_flag_ids bigint[];
    v_flag_keys text[];
    v_answers boolean[];
begin
    -- Set-based: one statement decides every flag, and the answers are counted and recorded
    -- together (a loop of the one-flag path cost 30 us a flag).
    select
        coalesce(pg_catalog.array_agg((l.f).id order by (l.f).key), '{}'),
        coalesce(pg_catalog.array_agg((l.f).key order by (l.f).key), '{}'),
        coalesce(pg_catalog.array_agg(
            private.feature_flag_decision(l.f, v_context) order by (l.f).key
        ), '{}')
    into v_flag_ids, v_flag_keys, v_answers
    from (
        select distinct on (f.key) f
        from public.feature_flags as f
        where f.environment in (p_environment, 'all')
        order by f.key, f.environment = 'all'
    ) as l;
    perform private.record_feature_flag_answers(
        p_environment, v_context, v_flag_ids, v_flag_keys, v_answers
    );
    return (
        select coalesce(pg_catalog.jsonb_object_agg(a.flag_key, a.enabled), '{}')
        from rows from (
            pg_catalog.unnest(v_flag_keys), pg_catalog.unnest(v_answers)
        ) as a (flag_key, enabled)
    );
end;
$$;
comment on function private.evaluate_feature_flags(text, text, jsonb) is
'The body of public.evaluate_feature_flags, with the rights to read every flag.';
revoke all on function private.evaluate_feature_flags(text, text, jsonb)
from public, anon, authenticated;
grant execute on function private.evaluate_feature_flags(text, text, jsonb)
to anon, authenticated, service_role;

create or replace function public.evaluate_feature_flags(
    p_user_id text default null,
    p_environment text default 'production',
    p_context jsonb default null
)
returns jsonb
language sql
volatile
set search_path = ''
return private.evaluate_feature_flags(p_user_id, p_environment, p_context);
comment on function public.evaluate_feature_flags(text, text, jsonb) is
'Every flag of p_environment for one user in one call, as {key: boolean}, evaluated as '
'is_feature_enabled evaluates one (what Unleash''s frontend API gives an app). The same callers '
'and refusals as is_feature_enabled. SECURITY INVOKER.';
revoke all on function public.evaluate_feature_flags(text, text, jsonb)
from public, anon, authenticated;
grant execute on function public.evaluate_feature_flags(text, text, jsonb)
to anon, authenticated, service_role;

-- Management ------------------------------------------------------------------------------------

create or replace function public.upsert_feature_flag(
    p_key text,
    p_name text,
    p_enabled boolean,
    p_rollout_strategy text default 'all',
    p_environment text default 'all',
    p_rollout_percentage integer default 0,
    p_target_users text[] default '{}',
    p_conditions jsonb default '[]',
    p_description text default null,
    p_group_id text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The arguments are checked one by one so a refusal names the argument; the table's own checks
-- and the conditions trigger stand behind them for whoever writes the table directly.
declare
    v_fault text;
    v_flag public.feature_flags;
begin
    if p_key is null or p_key !~ '^[a-z0-9][a-z0-9_.-]{0,99}$' then
        raise exception 'upsert_feature_flag: p_key must be a lower-case slug of 1 to 100 '
            'characters ([a-z0-9_.-], starting with a letter or digit; got %)',
            private.quoted_for_error(p_key, 100)
        using errcode = '22023';
    end if;
    perform private.require_length(p_name, 1, 200, 'upsert_feature_flag', 'p_name');
    perform private.require_nullable_length(
        p_description, 0, 2000, 'upsert_feature_flag', 'p_description'
    );
    perform private.require_nullable_length(p_group_id, 1, 100, 'upsert_feature_flag', 'p_group_id');
    if p_enabled is null then
        raise exception 'upsert_feature_flag: p_enabled must be true or false'
        using errcode = '22023';
    end if;
    if p_rollout_strategy is null
        or p_rollout_strategy not in ('percentage', 'user_list', 'condition', 'all', 'none') then
        raise exception 'upsert_feature_flag: p_rollout_strategy must be percentage, user_list, '
            'condition, all or none (got %)', private.quoted_for_error(p_rollout_strategy, 20)
        using errcode = '22023';
    end if;
    if p_environment is null
        or p_environment not in ('development', 'staging', 'production', 'all') then
        raise exception 'upsert_feature_flag: p_environment must be development, staging, '
            'production or all (got %)', private.quoted_for_error(p_environment, 20)
        using errcode = '22023';
    end if;
    perform private.require_between(
        p_rollout_percentage, 0, 100, 'upsert_feature_flag', 'p_rollout_percentage'
    );
    if p_target_users is null or pg_catalog.cardinality(p_target_users) > 10000 or exists (
        select from pg_catalog.unnest(p_target_users) as u (id)
        where u.id is null or pg_catalog.char_length(u.id) not between 1 and 200
    ) then
        raise exception 'upsert_feature_flag: p_target_users must be at most 10000 user ids of 1 '
            'to 200 characters'
        using errcode = '22023';
    end if;
    if p_rollout_strategy = 'user_list' and pg_catalog.cardinality(p_target_users) = 0 then
        raise exception 'upsert_feature_flag: a user_list flag needs p_target_users'
        using errcode = '22023';
    end if;
    if p_conditions is null or pg_catalog.jsonb_typeof(p_conditions) <> 'array' then
        raise exception 'upsert_feature_flag: p_conditions must be a JSON array of constraints'
        using errcode = '22023';
    end if;
    perform private.require_json_size(p_conditions, 65536, 'upsert_feature_flag', 'p_conditions');
    v_fault := private.unleash_constraints_fault(p_conditions);
    if v_fault is not null then
        raise exception 'upsert_feature_flag: p_conditions: %', v_fault using errcode = '22023';
    end if;
    if p_rollout_strategy = 'condition' and pg_catalog.jsonb_array_length(p_conditions) = 0 then
        raise exception 'upsert_feature_flag: a condition flag needs p_conditions'
        using errcode = '22023';
    end if;

    insert into public.feature_flags as f (
        key,
        name,
        description,
        enabled,
        rollout_strategy,
        environment,
        rollout_percentage,
        target_users,
        conditions,
        group_id
    )
    values (
        p_key,
        p_name,
        p_description,
        p_enabled,
        p_rollout_strategy,
        p_environment,
        p_rollout_percentage,
        p_target_users,
        p_conditions,
        p_group_id
    )
    on conflict (key, environment) do update
        set
            name = excluded.name,
            description = excluded.description,
            enabled = excluded.enabled,
            rollout_strategy = excluded.rollout_strategy,
            rollout_percentage = excluded.rollout_percentage,
            target_users = excluded.target_users,
            conditions = excluded.conditions,
            group_id = excluded.group_id
    returning f.* into v_flag;
    return pg_catalog.to_jsonb(v_flag);
end;
$$;
comment on function public.upsert_feature_flag(
    text, text, boolean, text, text, integer, text[], jsonb, text, text
) is
'Creates or replaces flag p_key in p_environment (default all) and returns its row. p_key a '
'lower-case slug; p_rollout_strategy percentage, user_list, condition, all or none; '
'p_rollout_percentage 0 to 100; p_target_users at most 10000 ids (needed by user_list); '
'p_conditions a JSON array of Unleash constraints (needed by condition); p_group_id Unleash''s '
'groupId (default the key). A bad argument is 22023 naming it. Audited; emits '
'feature_flag.changed. service_role only.';
revoke all on function public.upsert_feature_flag(
    text, text, boolean, text, text, integer, text[], jsonb, text, text
) from public, anon, authenticated;
grant execute on function public.upsert_feature_flag(
    text, text, boolean, text, text, integer, text[], jsonb, text, text
) to service_role;

create or replace function public.delete_feature_flag(p_key text, p_environment text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_flag public.feature_flags;
begin
    perform private.require_length(p_key, 1, 200, 'delete_feature_flag', 'p_key');
    perform private.require_length(p_environment, 1, 20, 'delete_feature_flag', 'p_environment');
    delete from public.feature_flags as f
    where f.key = p_key and f.environment = p_environment
    returning f.* into v_flag;
    if not found then
        raise exception 'delete_feature_flag: no flag % in environment %', p_key, p_environment
        using errcode = 'PT404';
    end if;
    return pg_catalog.jsonb_build_object(
        'key', v_flag.key, 'environment', v_flag.environment, 'deleted', true
    );
end;
$$;
comment on function public.delete_feature_flag(text, text) is
'Deletes flag p_key''s row for p_environment (development, staging, production or all); PT404 '
'when there is none. Audited; emits feature_flag.changed. service_role only.';
revoke all on function public.delete_feature_flag(text, text) from public, anon, authenticated;
grant execute on function public.delete_feature_flag(text, text) to service_role;

-- Retention -------------------------------------------------------------------------------------

create or replace function private.purge_feature_flag_evaluations(
    p_older_than interval default '400 days'
)
returns integer
language plpgsql
set search_path = ''
as $$
-- Answers of deleted flags go; a long-unchanged answer goes after p_older_than (its subject's
-- next evaluation records it again, since then).
declare
    v_deleted integer;
begin
    delete from public.feature_flag_evaluations as e
    where e.since < pg_catalog.now() - p_older_than
        or not exists (select from public.feature_flags as f where f.key = e.flag_key);
    get diagnostics v_deleted = row_count;
    return v_deleted;
end;
$$;
comment on function private.purge_feature_flag_evaluations(interval) is
'Deletes the recorded answers of flags that no longer exist, and those unchanged for longer than '
'p_older_than; returns how many.';

select private.schedule_cron(
    'purge-feature-flag-evaluations', '17 4 * * *',
    'select private.purge_feature_flag_evaluations()'
);

create or replace view monitoring.feature_flag_answers as
select
    e.flag_key,
    e.environment,
    e.subject,
    e.enabled,
    e.since,
    e.first_evaluated_at
from public.feature_flag_evaluations as e;
comment on view monitoring.feature_flag_answers is
'Who got which answer for each flag and environment, and since when: "who got new_ui on, since '
'when" is where flag_key = ''new_ui'' and enabled. A subject is a user id, else a session id.';
grant select on monitoring.feature_flag_answers to analyst;

create or replace view monitoring.feature_flag_overview as
with samples as (
    -- The counts over the last hour and day (the counters now less their samples then; none
    -- sampled that long ago: the flag is younger, and counted from zero). The answers that were
    -- on are read before the evaluations, which are counted first.
    select
        f.id,
        private.counted_since(
            'feature_flag_' || f.id || '_evaluations_on', pg_catalog.now() - interval '1 hour'
        ) as enabled_last_hour,
        private.counted_since(
            'feature_flag_' || f.id || '_evaluations', pg_catalog.now() - interval '1 hour'
        ) as evaluations_last_hour,
        private.counted_since(
            'feature_flag_' || f.id || '_evaluations_on', pg_catalog.now() - interval '1 day'
        ) as enabled_last_day,
        private.counted_since(
            'feature_flag_' || f.id || '_evaluations', pg_catalog.now() - interval '1 day'
        ) as evaluations_last_day
    from public.feature_flags as f
)

select
    f.key,
    f.environment,
    f.enabled,
    f.rollout_strategy,
    f.rollout_percentage,
    pg_catalog.cardinality(f.target_users) as target_users,
    pg_catalog.jsonb_array_length(f.conditions) as conditions,
    s.evaluations_last_hour,
    round(s.enabled_last_hour::numeric / nullif(s.evaluations_last_hour, 0), 4)
        as share_on_last_hour,
    s.evaluations_last_day,
    round(s.enabled_last_day::numeric / nullif(s.evaluations_last_day, 0), 4)
        as share_on_last_day,
    f.updated_at as last_changed_at
from public.feature_flags as f
inner join samples as s on f.id = s.id;
comment on view monitoring.feature_flag_overview is
'Per flag and environment: enabled, strategy, percentage, how many target users and conditions, '
'evaluations and the share on over the last hour and day (from the counters, sampled every 5 '
'minutes), and when it last changed.';
grant select on monitoring.feature_flag_overview to analyst;

create or replace view monitoring.feature_flag_evaluations_by_hour as
with deltas as (
    -- What each sample adds to the one before (the first counts from the flag's creation). A
    -- flag's two counters are sampled by the same statement, at the same time.
    select
        f.key as flag_key,
        f.environment,
        e.sampled_at,
        private.counter_increase(
            e.value,
            coalesce(pg_catalog.lag(e.value) over (partition by f.id order by e.sampled_at), 0)
        ) as evaluations,
        private.counter_increase(
            o.value,
            coalesce(pg_catalog.lag(o.value) over (partition by f.id order by e.sampled_at), 0)
        ) as enabled
    from public.feature_flags as f
    inner join private.counter_samples as e
        on e.counter = 'feature_flag_' || f.id || '_evaluations'
    inner join private.counter_samples as o
        on
            o.counter = 'feature_flag_' || f.id || '_evaluations_on'
            and e.sampled_at = o.sampled_at
)

select
    d.flag_key,
    d.environment,
    pg_catalog.date_trunc('hour', d.sampled_at) as hour, -- noqa: RF04
    sum(d.evaluations) as evaluations,
    sum(d.enabled) as enabled,
    round(sum(d.enabled)::numeric / nullif(sum(d.evaluations), 0), 4) as share_on
from deltas as d
group by d.flag_key, d.environment, pg_catalog.date_trunc('hour', d.sampled_at);
comment on view monitoring.feature_flag_evaluations_by_hour is
'Evaluations per flag, environment and hour, how many were on and the share on, from the '
'5-minute samples of the counters (an evaluation counts in the hour of the sample after it); '
'flags that exist, over the 30 days the samples are kept.';
grant select on monitoring.feature_flag_evaluations_by_hour to analyst;
