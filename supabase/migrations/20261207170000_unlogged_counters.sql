-- Counters become unlogged sequences: a logged one writes WAL every 32 values, which gives the
-- transaction that counts (get_cache's read, a flag's evaluation) an id and makes its commit wait
-- for a flush, a quarter of get_cache's rate (bench/cache.py). An unlogged counter starts again
-- from zero after a crash; the monitoring views read a drop as that restart. New counters are
-- made unlogged (private.make_counter). Through execute: sqlfluff's dialect does not parse
-- ALTER SEQUENCE ... SET UNLOGGED, and would leave the rest of the file unlinted.
do $$
declare
    v_counter regclass;
begin
    for v_counter in
        select c.oid::regclass
        from pg_catalog.pg_class as c
        where c.relnamespace = 'counters'::regnamespace and c.relkind = 'S'
        order by c.relname
    loop
        execute pg_catalog.format('alter sequence %s set unlogged', v_counter);
    end loop;
end;
$$;
