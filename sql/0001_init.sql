-- 0001: the warehouse contract tables (docs/schema.md) and the pipeline's own state.
-- Runs with search_path set to the warehouse schema; every statement is idempotent.

CREATE TABLE IF NOT EXISTS issue (
    issue_id        bigint PRIMARY KEY,
    issue_key       text NOT NULL,
    project_id      bigint,
    project_key     text,
    issue_type      text,
    status          text,
    status_category text,
    priority        text,
    resolution      text,
    summary         text,
    description     text,
    assignee        text,
    reporter        text,
    creator         text,
    created         timestamptz,
    updated         timestamptz,
    resolved        timestamptz,
    due_date        date,
    parent_id       bigint,
    deleted_at      timestamptz
);
CREATE INDEX IF NOT EXISTS issue_key_idx ON issue (issue_key);
CREATE INDEX IF NOT EXISTS issue_project_updated_idx ON issue (project_key, updated);
CREATE INDEX IF NOT EXISTS issue_parent_idx ON issue (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS issue_label (
    issue_id bigint NOT NULL,
    label    text NOT NULL,
    PRIMARY KEY (issue_id, label)
);
CREATE INDEX IF NOT EXISTS issue_label_label_idx ON issue_label (label);

CREATE TABLE IF NOT EXISTS issue_component (
    issue_id       bigint NOT NULL,
    component_id   bigint NOT NULL,
    component_name text,
    PRIMARY KEY (issue_id, component_id)
);

CREATE TABLE IF NOT EXISTS issue_version (
    issue_id     bigint NOT NULL,
    version_id   bigint NOT NULL,
    relation     text NOT NULL CHECK (relation IN ('fix', 'affects')),
    version_name text,
    released     boolean,
    release_date date,
    PRIMARY KEY (issue_id, version_id, relation)
);

CREATE TABLE IF NOT EXISTS issue_link (
    link_id          bigint PRIMARY KEY,
    source_issue_id  bigint NOT NULL,
    target_issue_id  bigint NOT NULL,
    source_issue_key text,
    target_issue_key text,
    link_type        text,
    outward          text,
    inward           text
);
CREATE INDEX IF NOT EXISTS issue_link_source_idx ON issue_link (source_issue_id);
CREATE INDEX IF NOT EXISTS issue_link_target_idx ON issue_link (target_issue_id);

CREATE TABLE IF NOT EXISTS changelog (
    history_id bigint PRIMARY KEY,
    issue_id   bigint NOT NULL,
    author     text,
    created    timestamptz
);
CREATE INDEX IF NOT EXISTS changelog_issue_idx ON changelog (issue_id, created);

CREATE TABLE IF NOT EXISTS changelog_item (
    history_id  bigint NOT NULL,
    item_seq    integer NOT NULL,
    issue_id    bigint NOT NULL,
    field       text,
    field_type  text,
    field_id    text,
    from_value  text,
    from_string text,
    to_value    text,
    to_string   text,
    PRIMARY KEY (history_id, item_seq)
);
CREATE INDEX IF NOT EXISTS changelog_item_issue_field_idx ON changelog_item (issue_id, field);

CREATE TABLE IF NOT EXISTS issue_field_value (
    issue_id        bigint NOT NULL,
    field_id        text NOT NULL,
    ordinal         integer NOT NULL,
    value_kind      text NOT NULL,
    text_value      text,
    number_value    double precision,
    timestamp_value timestamptz,
    date_value      date,
    option_id       bigint,
    user_key        text,
    sprint_state    text,
    json_value      text,
    PRIMARY KEY (issue_id, field_id, ordinal)
);
CREATE INDEX IF NOT EXISTS issue_field_value_field_idx ON issue_field_value (field_id);

CREATE TABLE IF NOT EXISTS field (
    field_id      text PRIMARY KEY,
    name          text,
    custom        boolean,
    schema_type   text,
    schema_items  text,
    schema_custom text,
    custom_id     bigint
);

-- Where the incremental cursor of each scope stands. Moves only in the
-- transaction that loads the data it covers.
CREATE TABLE IF NOT EXISTS checkpoint (
    scope       text PRIMARY KEY,
    cursor      timestamptz NOT NULL,
    run_id      text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Ledger of loaded pages: loading a page twice changes nothing.
CREATE TABLE IF NOT EXISTS page_ledger (
    scope       text NOT NULL,
    page        text NOT NULL,
    run_id      text NOT NULL,
    issue_count integer NOT NULL,
    row_count   bigint NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, page)
);
CREATE INDEX IF NOT EXISTS page_ledger_run_idx ON page_ledger (scope, run_id);

-- Issues that could not be transformed or loaded, with the reason.
CREATE TABLE IF NOT EXISTS quarantine (
    scope       text NOT NULL,
    page        text NOT NULL,
    issue_key   text NOT NULL DEFAULT '',
    reason      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, page, issue_key)
);

-- One row per pipeline run.
CREATE TABLE IF NOT EXISTS run_history (
    run_id     bigserial PRIMARY KEY,
    command    text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz,
    outcome    text,
    summary    jsonb
);
