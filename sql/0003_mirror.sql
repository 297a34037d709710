-- 0003: the faithful mirror (docs/schema.md "Removed issues"): removal marks,
-- the scope that last loaded each issue, scope fingerprints, the census
-- record, and the current versions and components of every project in scope.
-- Runs with search_path set to the warehouse schema; every statement is idempotent.

-- Why an issue with deleted_at set is no longer live: 'deleted' (Jira
-- answers 404: deleted, or no longer visible to the pipeline's user) or
-- 'out_of_scope' (it exists but no configured scope matches it any more).
ALTER TABLE issue ADD COLUMN IF NOT EXISTS removed_reason text;
-- The scope whose run last loaded the issue; the census of that scope
-- answers for it.
ALTER TABLE issue ADD COLUMN IF NOT EXISTS scope text;

-- Issues that are live in Jira: what reports should read.
CREATE OR REPLACE VIEW live_issue AS SELECT * FROM issue WHERE deleted_at IS NULL;

-- The fingerprint of the scope definition the cursor belongs to.
ALTER TABLE checkpoint ADD COLUMN IF NOT EXISTS fingerprint text;

-- The last complete census of each scope (pipeline reconcile).
CREATE TABLE IF NOT EXISTS census (
    scope          text PRIMARY KEY,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    listed         bigint NOT NULL,
    deleted        bigint NOT NULL,
    out_of_scope   bigint NOT NULL,
    moved          bigint NOT NULL,
    revived        bigint NOT NULL,
    requests       bigint NOT NULL
);

-- The versions of every project in scope, as Jira lists them now.
CREATE TABLE IF NOT EXISTS project_version (
    version_id   bigint PRIMARY KEY,
    project_key  text NOT NULL,
    project_id   bigint,
    name         text,
    description  text,
    released     boolean,
    archived     boolean,
    release_date date,
    start_date   date
);
CREATE INDEX IF NOT EXISTS project_version_project_idx ON project_version (project_key);

-- The components of every project in scope, as Jira lists them now.
CREATE TABLE IF NOT EXISTS project_component (
    component_id bigint PRIMARY KEY,
    project_key  text NOT NULL,
    project_id   bigint,
    name         text,
    description  text,
    lead_key     text,
    lead_name    text,
    assignee_type text
);
CREATE INDEX IF NOT EXISTS project_component_project_idx ON project_component (project_key);
