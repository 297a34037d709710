//! Dimensions: projects with their versions and components, and the constant
//! catalogues (statuses, priorities, issue types, resolutions), as Jira DC
//! 8/9 REST v2 serves them (`/rest/api/2/project…`, `/status`, `/priority`,
//! `/issuetype`, `/resolution`); the typed ground truth of versions and
//! components ([`VersionTruth`], [`ComponentTruth`]); and the mutations on
//! them (release, rename, archive, a new component lead), none of which
//! changes any issue's `updated`, as in Jira.
//!
//! The ids are the ones issue bodies carry (`fields.project.id`,
//! `fields.status.id`, `fields.fixVersions[].id`, …). Versions and
//! components are rendered from their truth structs, so what the endpoints
//! serve and what tests compare against cannot drift apart.

use chrono::{NaiveDate, TimeZone};

use super::catalog::*;
use super::data::{ComponentDef, Dataset, Project, VersionDef};
use super::json::{opt_str, raw, write_json_str};
use super::render::{write_project_avatars, write_project_category};
use super::state::{SimControl, now_ms};

/// A project version as `GET /rest/api/2/project/{key}/versions` serves it
/// (every served member, typed; `None` members are omitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTruth {
    /// `self`: `{base}/rest/api/2/version/{id}`.
    pub self_url: String,
    /// `id` (served as a string).
    pub id: u64,
    pub description: Option<String>,
    pub name: String,
    pub archived: bool,
    pub released: bool,
    /// `startDate`, `yyyy-MM-dd`.
    pub start_date: Option<NaiveDate>,
    /// `releaseDate`, `yyyy-MM-dd`.
    pub release_date: Option<NaiveDate>,
    /// `overdue`: only for an unreleased version with a release date (true
    /// once that date is past in the server's zone).
    pub overdue: Option<bool>,
    /// `userStartDate`: the start date as the user reads it (`15/Jan/24`).
    pub user_start_date: Option<String>,
    /// `userReleaseDate`: the release date as the user reads it (`01/Mar/24`).
    pub user_release_date: Option<String>,
    /// `projectId` (a number).
    pub project_id: u64,
}

/// A component lead or other user reference, as a component carries it.
pub type UserRef = &'static User;

/// A project component as `GET /rest/api/2/project/{key}/components` serves
/// it (every served member, typed; `None` members are omitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentTruth {
    /// `self`: `{base}/rest/api/2/component/{id}`.
    pub self_url: String,
    /// `id` (served as a string).
    pub id: u64,
    pub name: String,
    pub description: Option<String>,
    /// `lead`: `{self, key, name, displayName, active}` of this user.
    pub lead: Option<UserRef>,
    /// `assigneeType`: always `PROJECT_DEFAULT`.
    pub assignee_type: &'static str,
    /// `isAssigneeTypeValid`: always false.
    pub is_assignee_type_valid: bool,
    /// `projectId` (a number).
    pub project_id: u64,
    /// `project`: the project key.
    pub project: String,
}

/// `d` as a Jira user reads a date (`dd/MMM/yy`).
fn user_date(d: NaiveDate) -> String {
    d.format("%d/%b/%y").to_string()
}

impl Dataset {
    /// The project with this key or id (`idOrKey` of the REST paths).
    pub(crate) fn project_by_id_or_key(&self, id_or_key: &str) -> Option<&Project> {
        let by_id = id_or_key.parse::<u64>().ok();
        self.projects
            .iter()
            .find(|p| Some(p.id) == by_id || p.key.eq_ignore_ascii_case(id_or_key))
    }

    /// The truth of version `v` of project `p`, `today` in the server's zone.
    fn version_truth(&self, p: &Project, v: &VersionDef, today: NaiveDate) -> VersionTruth {
        VersionTruth {
            self_url: format!("{}/rest/api/2/version/{}", self.base_url, v.id),
            id: v.id,
            description: v.description.clone(),
            name: v.name.clone(),
            archived: v.archived,
            released: v.released,
            start_date: v.start_date,
            release_date: v.release_date,
            overdue: v.release_date.filter(|_| !v.released).map(|d| d < today),
            user_start_date: v.start_date.map(user_date),
            user_release_date: v.release_date.map(user_date),
            project_id: p.id,
        }
    }

    /// The truth of component `c` of project `p`.
    fn component_truth(&self, p: &Project, c: &ComponentDef) -> ComponentTruth {
        ComponentTruth {
            self_url: format!("{}/rest/api/2/component/{}", self.base_url, c.id),
            id: c.id,
            name: c.name.clone(),
            description: c.description.clone(),
            lead: c.lead.map(|u| &USERS[u]),
            assignee_type: "PROJECT_DEFAULT",
            is_assignee_type_valid: false,
            project_id: p.id,
            project: p.key.clone(),
        }
    }

    /// Today's date in the server's zone.
    fn today(&self) -> NaiveDate {
        self.server_tz
            .timestamp_millis_opt(now_ms())
            .single()
            .map(|t| t.date_naive())
            .unwrap_or_default()
    }

    /// The versions of the project with this id or key, in their order.
    pub fn project_versions(&self, id_or_key: &str) -> Option<Vec<VersionTruth>> {
        let p = self.project_by_id_or_key(id_or_key)?;
        let today = self.today();
        Some(
            p.versions
                .iter()
                .map(|v| self.version_truth(p, v, today))
                .collect(),
        )
    }

    /// The components of the project with this id or key, in their order.
    pub fn project_components(&self, id_or_key: &str) -> Option<Vec<ComponentTruth>> {
        let p = self.project_by_id_or_key(id_or_key)?;
        Some(
            p.components
                .iter()
                .map(|c| self.component_truth(p, c))
                .collect(),
        )
    }

    /// Version `id` and its project's index, or the error.
    fn version_mut(&mut self, id: u64) -> Result<(usize, &mut VersionDef), String> {
        self.projects
            .iter_mut()
            .enumerate()
            .find_map(|(pi, p)| p.versions.iter_mut().find(|v| v.id == id).map(|v| (pi, v)))
            .ok_or_else(|| format!("Could not find version for id '{id}'"))
    }

    /// Component `id` and its project's index, or the error.
    fn component_mut(&mut self, id: u64) -> Result<(usize, &mut ComponentDef), String> {
        self.projects
            .iter_mut()
            .enumerate()
            .find_map(|(pi, p)| {
                p.components
                    .iter_mut()
                    .find(|c| c.id == id)
                    .map(|c| (pi, c))
            })
            .ok_or_else(|| format!("The component with id {id} does not exist."))
    }
}

/// A valid new name for version `id` of project `pi`: not empty, and no
/// other version of the project has it (case-insensitively), as Jira checks.
fn check_version_name(ds: &Dataset, pi: usize, id: u64, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("You must specify a valid version name".into());
    }
    let taken = ds.projects[pi]
        .versions
        .iter()
        .any(|v| v.id != id && v.name.eq_ignore_ascii_case(name));
    if taken {
        return Err("A version with this name already exists in this project.".into());
    }
    Ok(())
}

/// The same for component names.
fn check_component_name(ds: &Dataset, pi: usize, id: u64, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("The component name specified is invalid - cannot be an empty string.".into());
    }
    let taken = ds.projects[pi]
        .components
        .iter()
        .any(|c| c.id != id && c.name.eq_ignore_ascii_case(name));
    if taken {
        return Err(format!(
            "A component with the name {name} already exists in this project."
        ));
    }
    Ok(())
}

impl SimControl {
    /// Releases version `version_id` on `release_date` (an already released
    /// version gets the new date). No issue changes.
    pub fn release_version(&self, version_id: u64, release_date: NaiveDate) -> Result<(), String> {
        self.write(|ds| {
            let (_, v) = ds.version_mut(version_id)?;
            v.released = true;
            v.release_date = Some(release_date);
            ds.generation += 1;
            Ok(())
        })
    }

    /// Renames version `version_id`: issue bodies (`fixVersions`,
    /// `versions`) show the new name at once, no issue's `updated` moves and
    /// no history is added (old changelog items keep the old name), as in
    /// Jira. An empty name or one another version of the project has is an
    /// error.
    pub fn rename_version(&self, version_id: u64, name: &str) -> Result<(), String> {
        self.write(|ds| {
            let (pi, _) = ds.version_mut(version_id)?;
            check_version_name(ds, pi, version_id, name)?;
            ds.version_mut(version_id)?.1.name = name.to_string();
            ds.generation += 1;
            Ok(())
        })
    }

    /// Archives version `version_id` (`archived: true` in the version list
    /// and in issue bodies; issues keep it). No issue changes.
    pub fn archive_version(&self, version_id: u64) -> Result<(), String> {
        self.write(|ds| {
            ds.version_mut(version_id)?.1.archived = true;
            ds.generation += 1;
            Ok(())
        })
    }

    /// Renames component `component_id`, like [`Self::rename_version`].
    pub fn rename_component(&self, component_id: u64, name: &str) -> Result<(), String> {
        self.write(|ds| {
            let (pi, _) = ds.component_mut(component_id)?;
            check_component_name(ds, pi, component_id, name)?;
            ds.component_mut(component_id)?.1.name = name.to_string();
            ds.generation += 1;
            Ok(())
        })
    }

    /// Sets (by user name) or clears the lead of component `component_id`.
    /// No issue changes.
    pub fn set_component_lead(
        &self,
        component_id: u64,
        user_name: Option<&str>,
    ) -> Result<(), String> {
        let lead = match user_name {
            Some(n) => Some(
                USERS
                    .iter()
                    .position(|u| u.name == n)
                    .ok_or_else(|| format!("The user '{n}' does not exist."))?,
            ),
            None => None,
        };
        self.write(|ds| {
            ds.component_mut(component_id)?.1.lead = lead;
            ds.generation += 1;
            Ok(())
        })
    }

    /// The versions of a project (by key or id) as the versions endpoint
    /// serves them now; empty for an unknown project.
    pub fn project_versions(&self, key: &str) -> Vec<VersionTruth> {
        self.dataset().project_versions(key).unwrap_or_default()
    }

    /// The components of a project (by key or id) as the components
    /// endpoint serves them now; empty for an unknown project.
    pub fn project_components(&self, key: &str) -> Vec<ComponentTruth> {
        self.dataset().project_components(key).unwrap_or_default()
    }
}

/// One version object.
fn write_version(out: &mut Vec<u8>, v: &VersionTruth) {
    raw(out, "{\"self\":");
    write_json_str(out, &v.self_url);
    raw(out, &format!(",\"id\":\"{}\"", v.id));
    if let Some(d) = &v.description {
        raw(out, ",\"description\":");
        write_json_str(out, d);
    }
    raw(out, ",\"name\":");
    write_json_str(out, &v.name);
    raw(
        out,
        &format!(",\"archived\":{},\"released\":{}", v.archived, v.released),
    );
    let date = |out: &mut Vec<u8>, k: &str, d: Option<NaiveDate>| {
        if let Some(d) = d {
            raw(out, &format!(",\"{k}\":\"{}\"", d.format("%Y-%m-%d")));
        }
    };
    date(out, "startDate", v.start_date);
    date(out, "releaseDate", v.release_date);
    if let Some(o) = v.overdue {
        raw(out, &format!(",\"overdue\":{o}"));
    }
    for (k, s) in [
        ("userStartDate", &v.user_start_date),
        ("userReleaseDate", &v.user_release_date),
    ] {
        if let Some(s) = s {
            raw(out, &format!(",\"{k}\":"));
            write_json_str(out, s);
        }
    }
    raw(out, &format!(",\"projectId\":{}}}", v.project_id));
}

/// A component's `lead`: `{self, key, name, displayName, active}`.
fn write_lead(base: &str, out: &mut Vec<u8>, u: &User) {
    raw(out, "{\"self\":");
    write_json_str(out, &format!("{base}/rest/api/2/user?username={}", u.name));
    raw(out, ",\"key\":");
    write_json_str(out, u.key);
    raw(out, ",\"name\":");
    write_json_str(out, u.name);
    raw(out, ",\"displayName\":");
    write_json_str(out, u.display_name);
    raw(out, &format!(",\"active\":{}}}", u.active));
}

/// One component object.
fn write_component(base: &str, out: &mut Vec<u8>, c: &ComponentTruth) {
    raw(out, "{\"self\":");
    write_json_str(out, &c.self_url);
    raw(out, &format!(",\"id\":\"{}\",\"name\":", c.id));
    write_json_str(out, &c.name);
    if let Some(d) = &c.description {
        raw(out, ",\"description\":");
        write_json_str(out, d);
    }
    if let Some(u) = c.lead {
        raw(out, ",\"lead\":");
        write_lead(base, out, u);
    }
    raw(
        out,
        &format!(
            ",\"assigneeType\":\"{}\",\"isAssigneeTypeValid\":{},\"projectId\":{},\"project\":",
            c.assignee_type, c.is_assignee_type_valid, c.project_id
        ),
    );
    write_json_str(out, &c.project);
    out.push(b'}');
}

/// A JSON array of `items`, each written by `f`.
fn array<T>(items: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * items.len() + 2);
    out.push(b'[');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        f(&mut out, it);
    }
    out.push(b']');
    out
}

/// Jira's 404 for an unknown project (`idOrKey` as given).
pub fn no_project(id_or_key: &str) -> String {
    let what = if id_or_key.bytes().all(|b| b.is_ascii_digit()) {
        "id"
    } else {
        "key"
    };
    serde_json::json!({
        "errorMessages": [format!("No project could be found with {what} '{id_or_key}'.")],
        "errors": {}
    })
    .to_string()
}

/// `GET /rest/api/2/project/{idOrKey}/versions` (`None`: no such project).
pub fn versions_json(ds: &Dataset, id_or_key: &str) -> Option<Vec<u8>> {
    let vs = ds.project_versions(id_or_key)?;
    Some(array(&vs, write_version))
}

/// `GET /rest/api/2/project/{idOrKey}/components` (`None`: no such project).
pub fn components_json(ds: &Dataset, id_or_key: &str) -> Option<Vec<u8>> {
    let cs = ds.project_components(id_or_key)?;
    Some(array(&cs, |out, c| write_component(&ds.base_url, out, c)))
}

/// One project as `GET /rest/api/2/project` lists it.
fn write_project_item(ds: &Dataset, out: &mut Vec<u8>, p: &Project) {
    let b = &ds.base_url;
    raw(
        out,
        &format!(
            "{{\"expand\":\"description,lead,url,projectKeys\",\"self\":\"{b}/rest/api/2/project/{id}\",\"id\":\"{id}\",\"key\":",
            id = p.id
        ),
    );
    write_json_str(out, &p.key);
    raw(out, ",\"name\":");
    write_json_str(out, &p.name);
    out.push(b',');
    write_project_avatars(b, out);
    write_project_category(b, out, p);
    raw(out, ",\"projectTypeKey\":\"software\"}");
}

/// `GET /rest/api/2/project`.
pub fn projects_json(ds: &Dataset) -> Vec<u8> {
    array(&ds.projects, |out, p| write_project_item(ds, out, p))
}

/// `GET /rest/api/2/project/{idOrKey}` (`None`: no such project): the list
/// item plus description, lead, components, issue types and versions.
pub fn project_json(ds: &Dataset, id_or_key: &str) -> Option<Vec<u8>> {
    let p = ds.project_by_id_or_key(id_or_key)?;
    let b = &ds.base_url;
    let mut out = Vec::with_capacity(8192);
    write_project_item(ds, &mut out, p);
    out.pop(); // the closing brace
    raw(&mut out, ",\"description\":");
    write_json_str(&mut out, &p.description);
    raw(&mut out, ",\"lead\":");
    write_lead(b, &mut out, &USERS[p.lead]);
    raw(&mut out, ",\"components\":");
    out.extend_from_slice(&components_json(ds, id_or_key)?);
    raw(&mut out, ",\"issueTypes\":");
    out.extend_from_slice(&issuetypes_json(ds));
    raw(&mut out, ",\"versions\":");
    out.extend_from_slice(&versions_json(ds, id_or_key)?);
    raw(
        &mut out,
        ",\"assigneeType\":\"UNASSIGNED\",\"roles\":{},\"archived\":false}",
    );
    Some(out)
}

/// `GET /rest/api/2/status`: the objects issue bodies carry in `fields.status`.
pub fn statuses_json(ds: &Dataset) -> Vec<u8> {
    array(&ds.frags.statuses, |out, s| out.extend_from_slice(s))
}

/// `GET /rest/api/2/priority`.
pub fn priorities_json(ds: &Dataset) -> Vec<u8> {
    let b = &ds.base_url;
    array(&PRIORITIES, |out, p| {
        raw(
            out,
            &format!(
                "{{\"self\":\"{b}/rest/api/2/priority/{id}\",\"statusColor\":\"{c}\",\"description\":",
                id = p.id,
                c = p.status_color
            ),
        );
        write_json_str(out, p.description);
        raw(
            out,
            &format!(
                ",\"iconUrl\":\"{b}/images/icons/priorities/{}\",\"name\":",
                p.icon
            ),
        );
        write_json_str(out, p.name);
        raw(out, &format!(",\"id\":\"{}\"}}", p.id));
    })
}

/// `GET /rest/api/2/issuetype`.
pub fn issuetypes_json(ds: &Dataset) -> Vec<u8> {
    let b = &ds.base_url;
    array(&ISSUE_TYPES, |out, t| {
        raw(
            out,
            &format!(
                "{{\"self\":\"{b}/rest/api/2/issuetype/{id}\",\"id\":\"{id}\",\"description\":",
                id = t.id
            ),
        );
        write_json_str(out, t.description);
        raw(
            out,
            &format!(
                ",\"iconUrl\":\"{b}/images/icons/issuetypes/{}\",\"name\":",
                t.icon
            ),
        );
        write_json_str(out, t.name);
        raw(
            out,
            &format!(",\"subtask\":{},\"avatarId\":{}}}", t.subtask, t.avatar_id),
        );
    })
}

/// `GET /rest/api/2/resolution`.
pub fn resolutions_json(ds: &Dataset) -> Vec<u8> {
    let b = &ds.base_url;
    array(&RESOLUTIONS, |out, r| {
        raw(
            out,
            &format!(
                "{{\"self\":\"{b}/rest/api/2/resolution/{id}\",\"id\":\"{id}\",\"description\":",
                id = r.id
            ),
        );
        opt_str(out, Some(r.description));
        raw(out, ",\"name\":");
        write_json_str(out, r.name);
        out.push(b'}');
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds() -> Dataset {
        Dataset::new(5, 200, &["DEMO".to_string(), "OPS".to_string()])
    }

    #[test]
    fn versions_render_their_truth() {
        let ds = ds();
        let truth = ds.project_versions("DEMO").expect("DEMO");
        let v: serde_json::Value =
            serde_json::from_slice(&versions_json(&ds, "10000").expect("by id")).expect("JSON");
        let list = v.as_array().expect("array");
        assert_eq!(list.len(), truth.len());
        for (j, t) in list.iter().zip(&truth) {
            assert_eq!(j["id"], t.id.to_string());
            assert_eq!(j["name"], t.name);
            assert_eq!(j["projectId"], 10000);
            assert_eq!(j.get("description").is_some(), t.description.is_some());
            assert_eq!(j.get("releaseDate").is_some(), t.release_date.is_some());
            assert_eq!(j.get("startDate").is_some(), t.start_date.is_some());
            assert_eq!(
                j.get("overdue").is_some(),
                !t.released && t.release_date.is_some()
            );
        }
        assert!(versions_json(&ds, "NOPE").is_none());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&no_project("NOPE")).expect("JSON"),
            serde_json::json!({"errorMessages": ["No project could be found with key 'NOPE'."], "errors": {}})
        );
    }

    #[test]
    fn user_dates_read_like_jira() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 1).expect("a date");
        assert_eq!(user_date(d), "01/Mar/24");
    }
}
