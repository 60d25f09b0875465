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

{#- Rules 2 and 3 differ only in the group an email's parent is looked for in (rule 3 also
    looks only for emails without a conversation_id). When the latest earlier email of each side
    was written comes from a window over the group in time order, then that email from a join on
    the time: joining each email to every earlier email of its group grew with the square of the
    group (at 100M activities, 52,654 emails of one subject on one record, 14.8 billion pairs:
    more spill than the disk held). -#}
{%- set fallback_rules = {
    'conversation': {'group': ['conversation_id'], 'looking': 'true'},
    'subject': {
        'group': ['subject_key', 'regarding_type', 'regarding_id'],
        'looking': 'conversation_id is null',
    },
} %}
{%- for rule, how in fallback_rules.items() %}
{%- set group = how.group %}

{{ rule }}_children as (
    select activity_id, side, {{ group | join(', ') }}
    from without_header
    where {{ how.looking }}{% for column in group %} and {{ column }} is not null{% endfor %}
),

{{ rule }}_latest_before as (
    select
        emails.activity_id,
        {%- for side in ['team', 'customer'] %}
        max(case when emails.side = '{{ side }}' then emails.activity_at end) over (
            partition by {% for column in group %}emails.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
            order by {{ epoch_microseconds('emails.activity_at') }}
            range between unbounded preceding and 1 preceding
        ) as {{ side }}_at{{ ',' if not loop.last }}
        {%- endfor %}
    from emails
    inner join (select distinct {{ group | join(', ') }} from {{ rule }}_children) as searched
        on {% for column in group %}emails.{{ column }} = searched.{{ column }}{{ ' and ' if not loop.last }}{% endfor %}
),

-- The latest earlier email of the other side; of several written at that time, the largest id.
by_{{ rule }} as (
    select child.activity_id, max(parent.activity_id) as parent_id
    from {{ rule }}_children as child
    inner join {{ rule }}_latest_before as latest on child.activity_id = latest.activity_id
    inner join emails as parent
        on
            {%- for column in group %}
            parent.{{ column }} = child.{{ column }}
            and {% endfor %}parent.side <> child.side
            and parent.activity_at = case child.side when 'team' then latest.customer_at else latest.team_at end
    group by child.activity_id
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
