-- 0002: per-issue digests, so the loader skips unchanged issues before the
-- COPY, and the secondary indexes a bulk first load defers.
-- Runs with search_path set to the warehouse schema; every statement is idempotent.

-- The digest (xxh3-128 of the issue's rows as transform wrote them, links
-- excepted) of the version stored in the warehouse. Written in the load
-- unit's transaction; NULL when the loaded batch carried none.
CREATE TABLE IF NOT EXISTS issue_digest (
    issue_id bigint PRIMARY KEY,
    digest   text
);

-- Secondary indexes dropped for a bulk first load, with their definitions:
-- recreated when the load ends, or by the next run if it was killed.
CREATE TABLE IF NOT EXISTS deferred_index (
    index_name text PRIMARY KEY,
    definition text NOT NULL
);
