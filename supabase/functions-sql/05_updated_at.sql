-- updated_at kept by the database, so that no writer (API role, RPC or operator) can forget it.

create or replace function private.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := pg_catalog.now();
    return new;
end;
$$;
comment on function private.set_updated_at() is
'BEFORE UPDATE trigger: sets updated_at to the transaction''s time.';
