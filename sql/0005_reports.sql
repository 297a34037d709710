-- 0005: reports (docs/reports.md): views over live issues and the function
-- field_value_at(). Created and upgraded by `pipeline db init` like the
-- tables they read, so they always match the schema version.
-- Runs with search_path set to the warehouse schema; every statement is idempotent.
-- CREATE OR REPLACE VIEW may only append columns: a later migration that
-- renames, retypes or drops a column of one of these views drops it first.

-- Every stay of a live issue in a status, the current one counted to now,
-- with the status's current name and its category (new, indeterminate,
-- done) from the status dimension.
CREATE OR REPLACE VIEW issue_status_time AS
SELECT s.issue_id,
       i.issue_key,
       i.project_key,
       s.seq,
       s.status_id,
       coalesce(st.name, s.status_name) AS status_name,
       st.category_key,
       st.category_name,
       s.entered_at,
       s.left_at,
       coalesce(s.seconds, floor(extract(epoch FROM now() - s.entered_at))::bigint) AS seconds,
       s.left_at IS NULL AS is_current
  FROM issue_status_interval s
  JOIN live_issue i ON i.issue_id = s.issue_id
  LEFT JOIN status st ON st.status_id = s.status_id;

-- Per issue and status: the time spent in it (all stays, the current one to
-- now) and how many times the issue entered it.
CREATE OR REPLACE VIEW report_time_in_status AS
SELECT t.issue_id,
       t.issue_key,
       t.project_key,
       t.status_id,
       t.status_name,
       t.category_key,
       sum(t.seconds)::bigint AS seconds,
       count(*) AS stays,
       bool_or(t.is_current) AS is_current
  FROM issue_status_time t
 GROUP BY t.issue_id, t.issue_key, t.project_key, t.status_id, t.status_name, t.category_key;

-- Per issue and status category (new, indeterminate, done).
CREATE OR REPLACE VIEW report_time_in_status_category AS
SELECT t.issue_id,
       t.issue_key,
       t.project_key,
       t.category_key,
       t.category_name,
       sum(t.seconds)::bigint AS seconds,
       count(*) AS stays,
       bool_or(t.is_current) AS is_current
  FROM issue_status_time t
 GROUP BY t.issue_id, t.issue_key, t.project_key, t.category_key, t.category_name;

-- Per issue: started (first entry into an indeterminate status), done (first
-- entry into a done status at or after that), first done (first entry into
-- a done status at all); cycle = started → done, lead = created → first
-- done, in seconds. NULL where not reached.
CREATE OR REPLACE VIEW report_cycle_time AS
SELECT i.issue_id,
       i.issue_key,
       i.project_key,
       i.issue_type,
       i.created,
       f.started_at,
       f.done_at,
       f.first_done_at,
       floor(extract(epoch FROM f.done_at - f.started_at))::bigint AS cycle_seconds,
       floor(extract(epoch FROM f.first_done_at - i.created))::bigint AS lead_seconds
  FROM live_issue i
  LEFT JOIN (
        SELECT a.issue_id,
               a.started_at,
               min(b.entered_at) FILTER (WHERE b.category_key = 'done') AS first_done_at,
               min(b.entered_at) FILTER (WHERE b.category_key = 'done'
                                           AND b.entered_at >= a.started_at) AS done_at
          FROM (SELECT t.issue_id,
                       min(t.entered_at) FILTER (WHERE t.category_key = 'indeterminate') AS started_at
                  FROM issue_status_time t
                 GROUP BY t.issue_id) a
          JOIN issue_status_time b ON b.issue_id = a.issue_id
         GROUP BY a.issue_id, a.started_at
       ) f ON f.issue_id = i.issue_id;

-- Issues reaching a done status for the first time, per week (starting on
-- Monday, in the session's TimeZone) and project.
CREATE OR REPLACE VIEW report_throughput_weekly AS
SELECT date_trunc('week', c.first_done_at)::date AS week_start,
       extract(isoyear FROM c.first_done_at)::integer AS iso_year,
       extract(week FROM c.first_done_at)::integer AS iso_week,
       c.project_key,
       count(*) AS issues
  FROM report_cycle_time c
 WHERE c.first_done_at IS NOT NULL
 GROUP BY 1, 2, 3, 4;

-- Per issue, each stay with one assignee (user_key NULL: unassigned), from
-- the field history; an issue whose assignee never changed has one stay,
-- its current assignee since it was created.
CREATE OR REPLACE VIEW report_assignee_history AS
SELECT h.issue_id,
       i.issue_key,
       h.seq,
       h.value AS user_key,
       coalesce(u.display_name, h.value_display) AS display_name,
       h.valid_from,
       h.valid_to,
       floor(extract(epoch FROM coalesce(h.valid_to, now()) - h.valid_from))::bigint AS seconds
  FROM issue_field_history h
  JOIN live_issue i ON i.issue_id = h.issue_id
  LEFT JOIN jira_user u ON u.user_key = h.value
 WHERE h.field_id = 'assignee'
UNION ALL
SELECT i.issue_id,
       i.issue_key,
       0,
       coalesce(i.assignee_key, i.assignee),
       coalesce(u.display_name, i.assignee),
       i.created,
       NULL::timestamptz,
       floor(extract(epoch FROM now() - i.created))::bigint
  FROM live_issue i
  LEFT JOIN jira_user u ON u.user_key = coalesce(i.assignee_key, i.assignee)
 WHERE NOT EXISTS (SELECT 1
                     FROM issue_field_history h
                    WHERE h.issue_id = i.issue_id AND h.field_id = 'assignee');

-- What field p_field_id of each live issue held at p_at: one row per issue
-- created at or before p_at. `status` comes from the stays (every issue
-- has them); other fields from the field history; an issue whose field
-- never changed has no history, and gets the issue's current value for
-- assignee, reporter, priority, resolution, issuetype and summary (other
-- fields: no row). search_path is fixed to this schema when the function
-- is created, so it works whatever the caller's search_path.
CREATE OR REPLACE FUNCTION field_value_at(p_field_id text, p_at timestamptz)
RETURNS TABLE (issue_id bigint, value text, value_display text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
SELECT s.issue_id, s.status_id::text, s.status_name
  FROM issue_status_interval s
  JOIN live_issue i ON i.issue_id = s.issue_id
 WHERE p_field_id = 'status'
   AND s.entered_at <= p_at AND (s.left_at IS NULL OR s.left_at > p_at)
UNION ALL
SELECT h.issue_id, h.value, h.value_display
  FROM issue_field_history h
  JOIN live_issue i ON i.issue_id = h.issue_id
 WHERE p_field_id <> 'status' AND h.field_id = p_field_id
   AND h.valid_from <= p_at AND (h.valid_to IS NULL OR h.valid_to > p_at)
UNION ALL
SELECT c.issue_id, c.value, c.value_display
  FROM (SELECT i.issue_id,
               i.created,
               CASE p_field_id
                   WHEN 'assignee' THEN coalesce(i.assignee_key, i.assignee)
                   WHEN 'reporter' THEN coalesce(i.reporter_key, i.reporter)
                   WHEN 'priority' THEN i.priority_id::text
                   WHEN 'resolution' THEN i.resolution_id::text
                   WHEN 'issuetype' THEN i.issue_type_id::text
                   WHEN 'summary' THEN NULL
               END AS value,
               CASE p_field_id
                   WHEN 'assignee' THEN coalesce(ua.display_name, i.assignee)
                   WHEN 'reporter' THEN coalesce(ur.display_name, i.reporter)
                   WHEN 'priority' THEN i.priority
                   WHEN 'resolution' THEN i.resolution
                   WHEN 'issuetype' THEN i.issue_type
                   WHEN 'summary' THEN i.summary
               END AS value_display
          FROM live_issue i
          LEFT JOIN jira_user ua ON ua.user_key = coalesce(i.assignee_key, i.assignee)
          LEFT JOIN jira_user ur ON ur.user_key = coalesce(i.reporter_key, i.reporter)
         WHERE p_field_id IN ('assignee', 'reporter', 'priority', 'resolution', 'issuetype', 'summary')
           AND i.created <= p_at
           AND NOT EXISTS (SELECT 1
                             FROM issue_field_history h
                            WHERE h.issue_id = i.issue_id AND h.field_id = p_field_id)
       ) c
$$;
