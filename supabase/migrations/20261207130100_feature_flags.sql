-- Feature flags (seed migration 4), evaluated in SQL with Unleash's semantics so a team can move
-- flags between the two and users land in the same buckets. Functions (evaluation, management,
-- recording), policies and the monitoring view are in supabase/functions-sql/ under
-- feature_flags; the Unleash rules (MurmurHash3, constraints) under feature_flag_rules.

create table public.feature_flags (
    id bigint generated always as identity primary key,
    key text not null, -- noqa: RF04
    name text not null, -- noqa: RF04
    description text,
    enabled boolean not null default false,
    rollout_strategy text not null default 'all',
    -- A row for the environment asked wins over the row for all of them.
    environment text not null default 'all',
    rollout_percentage integer not null default 0,
    target_users text[] not null default '{}',
    -- Unleash constraints, all of which must hold on the context, whatever the strategy.
    conditions jsonb not null default '[]',
    -- Unleash's groupId: flags sharing one put a user in the same bucket. Null: the key.
    group_id text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint feature_flags_key_environment unique (key, environment),
    constraint feature_flags_key_slug check (key ~ '^[a-z0-9][a-z0-9_.-]{0,99}$'),
    constraint feature_flags_name_length check (char_length(name) between 1 and 200),
    constraint feature_flags_description_length check (char_length(description) <= 2000),
    constraint feature_flags_strategy_known check (
        rollout_strategy in ('percentage', 'user_list', 'condition', 'all', 'none')
    ),
    constraint feature_flags_environment_known check (
        environment in ('development', 'staging', 'production', 'all')
    ),
    constraint feature_flags_percentage_range check (rollout_percentage between 0 and 100),
    constraint feature_flags_targets_bounded check (
        cardinality(target_users) <= 10000
        and array_position(target_users, null) is null
    ),
    constraint feature_flags_user_list_has_users check (
        rollout_strategy <> 'user_list' or cardinality(target_users) > 0
    ),
    constraint feature_flags_condition_has_conditions check (
        rollout_strategy <> 'condition' or jsonb_array_length(conditions) > 0
    ),
    constraint feature_flags_conditions_array check (jsonb_typeof(conditions) = 'array'),
    constraint feature_flags_conditions_size check (octet_length(conditions::text) <= 65536),
    constraint feature_flags_group_id_length check (char_length(group_id) between 1 and 100)
);
comment on table public.feature_flags is
'One row per flag and environment (development, staging, production, or all: the row for the '
'asked environment wins). rollout_strategy: percentage (Unleash''s gradual rollout by user id, '
'else session id, bucketed by group_id), user_list (target_users), condition (conditions only), '
'all, none. conditions (Unleash constraints) must all hold whatever the strategy. Read by '
'is_feature_enabled and evaluate_feature_flags; written by upsert_feature_flag and '
'delete_feature_flag (or by the table owner, as the seed does). Not readable through the API: '
'target lists are private.';

-- Who got which answer, since when: one row per flag, environment and subject (a user id, else
-- a session id), written when the answer is first given and when it changes, never for a
-- repeated answer.
create table public.feature_flag_evaluations (
    flag_key text not null,
    environment text not null,
    subject text not null,
    enabled boolean not null,
    since timestamptz not null default now(),
    first_evaluated_at timestamptz not null default now(),
    -- Subject first: evaluate_feature_flags reads one subject's answers to every flag.
    primary key (subject, environment, flag_key),
    constraint feature_flag_evaluations_subject_length check (
        char_length(subject) between 1 and 200
    )
);
comment on table public.feature_flag_evaluations is
'The answer each subject (user id, else session id) last got for each flag and environment, and '
'since when: written on the first evaluation and when the answer changes, never for a repeated '
'one. Rows not evaluated again for 90 days are purged.';

-- "Who got new_ui on, since when". Partial: an evaluation's lookup (by subject, flag and
-- environment, no condition on enabled) can then only use the primary key, whatever the
-- statistics say; a full index on the flag was preferred while they were young, and read
-- every answer of the flag per lookup.
create index feature_flag_evaluations_on on public.feature_flag_evaluations (
    flag_key, environment, since
)
where enabled;

-- How many evaluations each flag had, and how many were on: every few minutes the cron job
-- samples two sequences per flag (nextval is no row write and takes no row lock, so counting an
-- evaluation neither writes a row nor makes evaluations of different users wait on each other).
-- An hour's count is the difference between two samples.
create table public.feature_flag_evaluation_counts (
    flag_id bigint not null,
    flag_key text not null,
    environment text not null,
    sampled_at timestamptz not null default now(),
    evaluations bigint not null,
    enabled bigint not null,
    primary key (flag_id, sampled_at),
    constraint feature_flag_evaluation_counts_positive check (
        evaluations >= 0 and enabled between 0 and evaluations
    )
);
comment on table public.feature_flag_evaluation_counts is
'Samples of each flag''s evaluation counters (cumulative since the flag row was made): '
'evaluations and how many were on. Written by the sample-feature-flag-counts cron job; kept 30 '
'days.';

alter table public.feature_flags enable row level security;
alter table public.feature_flag_evaluation_counts enable row level security;
revoke all on public.feature_flag_evaluation_counts from anon, authenticated;
alter table public.feature_flag_evaluations enable row level security;
revoke all on public.feature_flags from anon, authenticated;
revoke all on public.feature_flag_evaluations from anon, authenticated;
