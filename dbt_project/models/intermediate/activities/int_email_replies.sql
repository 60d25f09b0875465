-- Incremental (docs/incremental.md): a night recomputes only the activities whose rows may have
-- changed (incremental_activities.sql); a table, as the reply models and their tests read it several times.
{{ activity_table_config('replies') }}
{%- set scope = incremental_scope() %}

-- One row per email that answers an email of the other side (its parent), and by which rule:
-- 1. in_reply_to: the email whose message_id is its in_reply_to. A parent found so on the same
--    side means the email is no response at all (no fallback).
-- 2. conversation: when in_reply_to is empty or names no email here, the latest earlier email of
--    the other side in the same conversation_id;
-- 3. subject: when there is no conversation_id either, the latest earlier email of the other side
--    with the same normalised subject regarding the same record.
-- "Here" means among int_emails_sided: a header naming an internal-only email, a later email or
-- one after the as-of date names no email.
with emails as (
    select * from {{ ref('int_emails_sided') }}
),

-- The emails whose parent is looked for: all of them, or those a night may pair differently.
children as (
    select * from emails
    where {{ in_scope('activity_id', scope) }}
),

by_header as (
    select
        child.activity_id,
        child.side,
        parent.activity_id as parent_id,
        parent.side as parent_side,
        row_number() over (
            partition by child.activity_id
            order by parent.activity_at desc, parent.activity_id desc
        ) as candidate_rank
    from children as child
    inner join emails as parent
        on
            child.in_reply_to = parent.message_id
            and parent.activity_at <= child.activity_at
            and parent.activity_id <> child.activity_id
),

header_parents as (
    select activity_id, side, parent_id, parent_side
    from by_header
    where candidate_rank = 1
),

without_header as (
    select children.*
    from children
    left join header_parents on children.activity_id = header_parents.activity_id
    where header_parents.activity_id is null
),

{#- Rules 2 and 3 differ only in what makes an email a candidate parent. -#}
{%- set fallback_rules = {
    'conversation': 'child.conversation_id = parent.conversation_id',
    'subject': 'child.conversation_id is null
            and child.subject_key = parent.subject_key
            and child.regarding_type = parent.regarding_type
            and child.regarding_id = parent.regarding_id',
} %}
{%- for rule, condition in fallback_rules.items() %}

by_{{ rule }} as (
    select
        child.activity_id,
        parent.activity_id as parent_id,
        row_number() over (
            partition by child.activity_id
            order by parent.activity_at desc, parent.activity_id desc
        ) as candidate_rank
    from without_header as child
    inner join emails as parent
        on
            {{ condition }}
            and child.side <> parent.side
            and parent.activity_at < child.activity_at
),
{%- endfor %}

paired as (
    select activity_id, parent_id, 'in_reply_to' as pairing_rule
    from header_parents
    where side <> parent_side
    {%- for rule in fallback_rules %}

    union all

    select activity_id, parent_id, '{{ rule }}' as pairing_rule
    from by_{{ rule }}
    where candidate_rank = 1
    {%- endfor %}
)

select
    paired.activity_id,
    paired.parent_id,
    paired.pairing_rule,
    replies.side,
    replies.activity_at
from paired
inner join emails as replies on paired.activity_id = replies.activity_id
