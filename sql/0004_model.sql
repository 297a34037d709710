-- 0004: the reporting model (docs/schema.md "Reporting model"): users,
-- dimensions, ids and user keys on issue, time tracking, time in status and
-- field history.
-- Runs with search_path set to the warehouse schema; every statement is idempotent.

ALTER TABLE issue ADD COLUMN IF NOT EXISTS assignee_key text;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS reporter_key text;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS creator_key text;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS status_id bigint;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS priority_id bigint;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS issue_type_id bigint;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS resolution_id bigint;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS original_estimate_seconds bigint;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS remaining_estimate_seconds bigint;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS time_spent_seconds bigint;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS aggregate_original_estimate_seconds bigint;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS aggregate_remaining_estimate_seconds bigint;
ALTER TABLE issue ADD COLUMN IF NOT EXISTS aggregate_time_spent_seconds bigint;

-- The view follows the table's new columns.
CREATE OR REPLACE VIEW live_issue AS SELECT * FROM issue WHERE deleted_at IS NULL;

-- Every user the pipeline has seen, by the user key (stable on Data Center;
-- names can be renamed).
CREATE TABLE IF NOT EXISTS jira_user (
    user_key     text PRIMARY KEY,
    user_name    text,
    display_name text,
    email        text,
    active       boolean,
    time_zone    text,
    last_seen    timestamptz
);

-- Dimensions, refreshed by every run from /rest/api/2/status, /priority,
-- /issuetype, /resolution and /project.
CREATE TABLE IF NOT EXISTS status (
    status_id     bigint PRIMARY KEY,
    name          text,
    category_key  text,
    category_name text
);
CREATE TABLE IF NOT EXISTS priority (
    priority_id bigint PRIMARY KEY,
    name        text
);
CREATE TABLE IF NOT EXISTS issue_type (
    issue_type_id bigint PRIMARY KEY,
    name          text,
    subtask       boolean
);
CREATE TABLE IF NOT EXISTS resolution (
    resolution_id bigint PRIMARY KEY,
    name          text
);
CREATE TABLE IF NOT EXISTS project (
    project_id   bigint PRIMARY KEY,
    project_key  text,
    name         text,
    project_type text
);

-- Time in status: one row per stay of an issue in a status, rebuilt from
-- its whole changelog whenever the issue is loaded. The current stay has
-- left_at and seconds NULL (issue_status_time counts it to now).
CREATE TABLE IF NOT EXISTS issue_status_interval (
    issue_id    bigint NOT NULL,
    seq         integer NOT NULL,
    status_id   bigint,
    status_name text,
    entered_at  timestamptz,
    left_at     timestamptz,
    seconds     bigint,
    PRIMARY KEY (issue_id, seq)
);

-- What each field held when: from the changelog, rebuilt with the issue.
CREATE TABLE IF NOT EXISTS issue_field_history (
    issue_id      bigint NOT NULL,
    field_id      text NOT NULL,
    field_name    text,
    seq           integer NOT NULL,
    value         text,
    value_display text,
    valid_from    timestamptz,
    valid_to      timestamptz,
    PRIMARY KEY (issue_id, field_id, seq)
);
