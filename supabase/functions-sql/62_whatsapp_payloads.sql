-- What an outbound WhatsApp message's payload must hold, per type, as the Cloud API documents
-- it. Checked when the message is enqueued, so that a caller hears about a bad field at once
-- rather than the sender hearing a 131009 from Meta minutes later. Each check returns the first
-- problem as text naming the field (null: none); enqueue_whatsapp_message raises it.

create or replace function private.json_text_problem(
    p_value jsonb,
    p_path text,
    p_max_length integer,
    p_required boolean default true
)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_value is null or p_value = 'null'::jsonb then
        return case when p_required then p_path || ' is required' end;
    end if;
    if pg_catalog.jsonb_typeof(p_value) <> 'string'
        or pg_catalog.char_length(p_value #>> '{}') not between 1 and p_max_length then
        return p_path || ' must be a string of 1 to ' || p_max_length || ' characters';
    end if;
    return null;
end;
$$;
comment on function private.json_text_problem(jsonb, text, integer, boolean) is
'Null when p_value is a JSON string of 1 to p_max_length characters (or absent and not '
'p_required); else the problem, naming p_path.';

create or replace function private.json_fields_problem(
    p_object jsonb,
    p_path text,
    p_allowed text[]
)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_unknown text;
begin
    if p_object is null or pg_catalog.jsonb_typeof(p_object) <> 'object' then
        return p_path || ' must be a JSON object';
    end if;
    select k.key into v_unknown
    from pg_catalog.jsonb_object_keys(p_object) as k (key)
    where k.key <> all(p_allowed)
    order by k.key
    limit 1;
    if v_unknown is not null then
        return p_path || ' has an unknown field ' || v_unknown || ' (known: '
            || pg_catalog.array_to_string(p_allowed, ', ') || ')';
    end if;
    return null;
end;
$$;
comment on function private.json_fields_problem(jsonb, text, text[]) is
'Null when p_object is a JSON object whose fields are all in p_allowed; else the problem, naming '
'p_path and the first unknown field (a misspelt optional field would otherwise be dropped).';

create or replace function private.json_number_problem(
    p_value jsonb,
    p_path text,
    p_low numeric,
    p_high numeric
)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_value is null or pg_catalog.jsonb_typeof(p_value) <> 'number'
        or (p_value #>> '{}')::numeric not between p_low and p_high then
        return p_path || ' must be a number from ' || p_low || ' to ' || p_high;
    end if;
    return null;
end;
$$;
comment on function private.json_number_problem(jsonb, text, numeric, numeric) is
'Null when p_value is a JSON number from p_low to p_high; else the problem, naming p_path.';

create or replace function private.whatsapp_text_problem(p_payload jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    return coalesce(
        private.json_fields_problem(p_payload, 'payload', array['body', 'preview_url']),
        private.json_text_problem(p_payload -> 'body', 'payload.body', 4096),
        case
            when pg_catalog.jsonb_typeof(p_payload -> 'preview_url') not in ('boolean', 'null')
                then 'payload.preview_url must be true or false'
        end
    );
end;
$$;
comment on function private.whatsapp_text_problem(jsonb) is
'The first problem of a text message''s payload: body of 1 to 4096 characters, preview_url a '
'boolean.';

create or replace function private.whatsapp_template_problem(p_payload jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    -- content_sid and content_variables are Twilio's way of naming an approved template.
    return coalesce(
        private.json_fields_problem(
            p_payload,
            'payload',
            array['name', 'language', 'components', 'content_sid', 'content_variables']
        ),
        case
            when pg_catalog.jsonb_typeof(p_payload -> 'name') is distinct from 'string'
                or (p_payload ->> 'name') !~ '^[a-z0-9_]+$'
                or pg_catalog.char_length(p_payload ->> 'name') > 512
                then 'payload.name must be a template name (lower case letters, digits and _, at most 512)'
        end,
        private.json_fields_problem(p_payload -> 'language', 'payload.language', array['code']),
        case
            when pg_catalog.jsonb_typeof(p_payload #> '{language,code}') is distinct from 'string'
                or (p_payload #>> '{language,code}') !~ '^[a-z]{2,3}(_[A-Za-z]{2,4})?$'
                then 'payload.language.code must be a language code such as en or en_US'
        end,
        case
            when pg_catalog.jsonb_typeof(p_payload -> 'components') not in ('array', 'null')
                then 'payload.components must be an array'
        end,
        (
            select 'payload.components[' || (c.ordinality - 1) || '] must be an object with a type'
            from pg_catalog.jsonb_array_elements(
                case
                    when pg_catalog.jsonb_typeof(p_payload -> 'components') = 'array'
                        then p_payload -> 'components'
                    else '[]'::jsonb
                end
            ) with ordinality as c (component, ordinality)
            where pg_catalog.jsonb_typeof(c.component -> 'type') is distinct from 'string'
            order by c.ordinality
            limit 1
        )
    );
end;
$$;
comment on function private.whatsapp_template_problem(jsonb) is
'The first problem of a template message''s payload: name, language.code, components an array '
'of objects with a type.';

create or replace function private.whatsapp_media_problem(p_payload jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_kind text := p_payload ->> 'media_type';
begin
    return coalesce(
        private.json_fields_problem(
            p_payload, 'payload', array['media_type', 'id', 'link', 'caption', 'filename']
        ),
        case
            when v_kind is null
                or v_kind not in ('image', 'audio', 'video', 'document', 'sticker')
                then 'payload.media_type must be image, audio, video, document or sticker'
        end,
        case
            when (p_payload ? 'id') = (p_payload ? 'link')
                then 'payload must have exactly one of id (an uploaded media id) and link'
        end,
        private.json_text_problem(p_payload -> 'id', 'payload.id', 256, false),
        private.json_text_problem(p_payload -> 'link', 'payload.link', 2048, false),
        case
            when (p_payload ->> 'link') !~ '^https?://[^\s]+$'
                then 'payload.link must be an http or https URL'
        end,
        case
            when p_payload ? 'caption' and v_kind not in ('image', 'video', 'document')
                then 'payload.caption is only for image, video and document'
        end,
        private.json_text_problem(p_payload -> 'caption', 'payload.caption', 1024, false),
        case
            when p_payload ? 'filename' and v_kind <> 'document'
                then 'payload.filename is only for document'
        end,
        private.json_text_problem(p_payload -> 'filename', 'payload.filename', 240, false)
    );
end;
$$;
comment on function private.whatsapp_media_problem(jsonb) is
'The first problem of a media message''s payload: media_type, exactly one of id and link, a '
'caption (1024) only on image, video and document, a filename (240) only on a document.';

create or replace function private.whatsapp_buttons_problem(p_buttons jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    if pg_catalog.jsonb_typeof(p_buttons) is distinct from 'array'
        or pg_catalog.jsonb_array_length(p_buttons) not between 1 and 3 then
        return 'payload.action.buttons must be an array of 1 to 3 reply buttons';
    end if;
    return coalesce(
        (
            select p.problem
            from pg_catalog.jsonb_array_elements(p_buttons) with ordinality as b (button, n)
            cross join lateral (
                select 'payload.action.buttons[' || (b.n - 1) || ']' as path
            ) as x
            cross join lateral (
                select coalesce(
                    case
                        when b.button ->> 'type' is distinct from 'reply'
                            then x.path || '.type must be reply'
                    end,
                    private.json_text_problem(b.button #> '{reply,id}', x.path || '.reply.id', 256),
                    private.json_text_problem(
                        b.button #> '{reply,title}', x.path || '.reply.title', 20
                    )
                ) as problem
            ) as p
            where p.problem is not null
            order by b.n
            limit 1
        ),
        (
            select 'payload.action.buttons must have distinct reply ids and titles'
            from pg_catalog.jsonb_array_elements(p_buttons) as b (button)
            having
                count(distinct b.button #>> '{reply,id}') < count(*)
                or count(distinct b.button #>> '{reply,title}') < count(*)
        )
    );
end;
$$;
comment on function private.whatsapp_buttons_problem(jsonb) is
'The first problem of an interactive message''s reply buttons: 1 to 3, each of type reply with '
'an id (256) and a title (20), ids and titles distinct.';

create or replace function private.whatsapp_list_problem(p_action jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_sections jsonb := p_action -> 'sections';
begin
    if pg_catalog.jsonb_typeof(v_sections) is distinct from 'array'
        or pg_catalog.jsonb_array_length(v_sections) not between 1 and 10 then
        return 'payload.action.sections must be an array of 1 to 10 sections';
    end if;
    return coalesce(
        private.json_text_problem(p_action -> 'button', 'payload.action.button', 20),
        (
            select p.problem
            from pg_catalog.jsonb_array_elements(v_sections) with ordinality as s (section, n)
            cross join lateral (
                select 'payload.action.sections[' || (s.n - 1) || ']' as path
            ) as x
            cross join lateral (
                select coalesce(
                    private.json_text_problem(
                        s.section -> 'title',
                        x.path || '.title',
                        24,
                        pg_catalog.jsonb_array_length(v_sections) > 1
                    ),
                    case
                        when pg_catalog.jsonb_typeof(s.section -> 'rows') is distinct from 'array'
                            or pg_catalog.jsonb_array_length(s.section -> 'rows') = 0
                            then x.path || '.rows must be a non-empty array'
                    end
                ) as problem
            ) as p
            where p.problem is not null
            order by s.n
            limit 1
        ),
        (
            select p.problem
            from pg_catalog.jsonb_array_elements(v_sections) with ordinality as s (section, n)
            cross join lateral pg_catalog.jsonb_array_elements(s.section -> 'rows')
                with ordinality as r (list_row, m)
            cross join lateral (
                select 'payload.action.sections[' || (s.n - 1) || '].rows[' || (r.m - 1) || ']'
                as path
            ) as x
            cross join lateral (
                select coalesce(
                    private.json_text_problem(r.list_row -> 'id', x.path || '.id', 200),
                    private.json_text_problem(r.list_row -> 'title', x.path || '.title', 24),
                    private.json_text_problem(
                        r.list_row -> 'description', x.path || '.description', 72, false
                    )
                ) as problem
            ) as p
            where p.problem is not null
            order by s.n, r.m
            limit 1
        ),
        (
            select 'payload.action.sections must hold at most 10 rows in all, with distinct ids'
            from pg_catalog.jsonb_array_elements(v_sections) as s (section)
            cross join lateral pg_catalog.jsonb_array_elements(s.section -> 'rows') as r (list_row)
            having count(*) > 10 or count(distinct r.list_row ->> 'id') < count(*)
        )
    );
end;
$$;
comment on function private.whatsapp_list_problem(jsonb) is
'The first problem of an interactive list''s action: a button label (20), 1 to 10 sections '
'(titled, 24, when more than one) holding 1 to 10 rows in all, each with a distinct id (200), '
'a title (24) and an optional description (72).';

create or replace function private.whatsapp_interactive_problem(p_payload jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_kind text := p_payload ->> 'type';
begin
    return coalesce(
        private.json_fields_problem(
            p_payload, 'payload', array['type', 'header', 'body', 'footer', 'action']
        ),
        case
            when v_kind is null or v_kind not in ('button', 'list')
                then 'payload.type must be button or list'
        end,
        private.json_fields_problem(p_payload -> 'body', 'payload.body', array['text']),
        private.json_text_problem(p_payload #> '{body,text}', 'payload.body.text', 1024),
        case
            when p_payload ? 'footer' then coalesce(
                private.json_fields_problem(p_payload -> 'footer', 'payload.footer', array['text']),
                private.json_text_problem(p_payload #> '{footer,text}', 'payload.footer.text', 60)
            )
        end,
        case
            when p_payload ? 'header' then coalesce(
                case
                    when pg_catalog.jsonb_typeof(p_payload -> 'header') <> 'object'
                        or (p_payload #>> '{header,type}') is null
                        or (p_payload #>> '{header,type}')
                        not in ('text', 'image', 'video', 'document')
                        then 'payload.header.type must be text, image, video or document'
                end,
                case
                    when p_payload #>> '{header,type}' = 'text'
                        then private.json_text_problem(
                            p_payload #> '{header,text}', 'payload.header.text', 60
                        )
                end
            )
        end,
        case
            when pg_catalog.jsonb_typeof(p_payload -> 'action') is distinct from 'object'
                then 'payload.action must be a JSON object'
            when v_kind = 'button'
                then private.whatsapp_buttons_problem(p_payload #> '{action,buttons}')
            else private.whatsapp_list_problem(p_payload -> 'action')
        end
    );
end;
$$;
comment on function private.whatsapp_interactive_problem(jsonb) is
'The first problem of an interactive message''s payload: type button or list, body.text (1024), '
'an optional footer.text (60) and header, and the type''s action.';

create or replace function private.whatsapp_location_problem(p_payload jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    return coalesce(
        private.json_fields_problem(
            p_payload, 'payload', array['latitude', 'longitude', 'name', 'address']
        ),
        private.json_number_problem(p_payload -> 'latitude', 'payload.latitude', -90, 90),
        private.json_number_problem(p_payload -> 'longitude', 'payload.longitude', -180, 180),
        private.json_text_problem(p_payload -> 'name', 'payload.name', 1000, false),
        private.json_text_problem(p_payload -> 'address', 'payload.address', 1000, false)
    );
end;
$$;
comment on function private.whatsapp_location_problem(jsonb) is
'The first problem of a location message''s payload: latitude (-90 to 90), longitude (-180 to '
'180), optional name and address (1000).';

create or replace function private.whatsapp_payload_problem(p_message_type text, p_payload jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_payload is null or pg_catalog.jsonb_typeof(p_payload) <> 'object' then
        return 'payload must be a JSON object';
    end if;
    if pg_catalog.octet_length(p_payload::text) > 65536 then
        return 'payload must be at most 64 kB';
    end if;
    return case p_message_type
        when 'text' then private.whatsapp_text_problem(p_payload)
        when 'template' then private.whatsapp_template_problem(p_payload)
        when 'media' then private.whatsapp_media_problem(p_payload)
        when 'interactive' then private.whatsapp_interactive_problem(p_payload)
        when 'location' then private.whatsapp_location_problem(p_payload)
        else 'message_type must be text, template, media, interactive or location'
    end;
end;
$$;
comment on function private.whatsapp_payload_problem(text, jsonb) is
'The first problem of an outbound message''s payload for its type, naming the field (null: it '
'can be sent).';
