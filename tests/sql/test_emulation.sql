begin;
select plan(3);

select has_role('anon');
select has_role('authenticated');
select has_role('service_role');

select * from finish();
rollback;
