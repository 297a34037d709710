//! Rows of the project dimension tables, `project_version` and
//! `project_component`, from the documents an End page carries
//! (`GET /rest/api/2/project/{key}/versions` and `…/components`, staged by
//! the extract run that the End page closes).

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value as Json;

use super::issue::{
    Out, T_ISSUE_TYPE, T_PRIORITY, T_PROJECT, T_PROJECT_COMPONENT, T_PROJECT_VERSION, T_RESOLUTION,
    T_STATUS,
};
use crate::tables::{self, CopyRow};

#[derive(Deserialize)]
struct RawVersion {
    id: Json,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    released: Option<bool>,
    #[serde(default)]
    archived: Option<bool>,
    #[serde(default, rename = "releaseDate")]
    release_date: Option<String>,
    #[serde(default, rename = "startDate")]
    start_date: Option<String>,
    #[serde(default, rename = "projectId")]
    project_id: Option<Json>,
}

#[derive(Deserialize)]
struct RawUser {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawComponent {
    id: Json,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    lead: Option<RawUser>,
    #[serde(default, rename = "assigneeType")]
    assignee_type: Option<String>,
    #[serde(default, rename = "projectId")]
    project_id: Option<Json>,
}

/// A Jira id: a string of digits, or a number.
fn id_of(v: &Json) -> Option<i64> {
    match v {
        Json::String(s) => s.parse().ok(),
        Json::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn date_of(s: Option<&str>) -> Option<NaiveDate> {
    s.and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// One entry of a global dimension list (`/status`, `/priority`,
/// `/issuetype`, `/resolution`, `/project`): the members any of them has.
#[derive(Deserialize)]
struct RawDim {
    id: Json,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    subtask: Option<bool>,
    #[serde(default, rename = "statusCategory")]
    category: Option<RawCategory>,
    #[serde(default, rename = "projectTypeKey")]
    project_type: Option<String>,
}

#[derive(Deserialize)]
struct RawCategory {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Rows of a global dimension list (`statuses`, `priorities`, `issuetypes`,
/// `resolutions`, `projects`).
fn write_dimension(out: &mut Out, what: &str, doc: &[u8]) -> Result<u64, String> {
    let list: Vec<RawDim> = serde_json::from_slice(doc)
        .map_err(|e| format!("the {what} list is not readable ({e})"))?;
    let (t, spec) = match what {
        "statuses" => (T_STATUS, &tables::STATUS),
        "priorities" => (T_PRIORITY, &tables::PRIORITY),
        "issuetypes" => (T_ISSUE_TYPE, &tables::ISSUE_TYPE),
        "resolutions" => (T_RESOLUTION, &tables::RESOLUTION),
        "projects" => (T_PROJECT, &tables::PROJECT),
        _ => return Ok(0),
    };
    let mut n = 0;
    for d in &list {
        let Some(id) = id_of(&d.id) else { continue };
        let mut row = CopyRow::of(spec, &mut out.bufs[t]);
        row.i64(id);
        match what {
            "statuses" => {
                let c = d.category.as_ref();
                row.opt_text(d.name.as_deref())
                    .opt_text(c.and_then(|c| c.key.as_deref()))
                    .opt_text(c.and_then(|c| c.name.as_deref()));
            }
            "issuetypes" => {
                row.opt_text(d.name.as_deref()).opt_bool(d.subtask);
            }
            "projects" => {
                row.opt_text(d.key.as_deref())
                    .opt_text(d.name.as_deref())
                    .opt_text(d.project_type.as_deref());
            }
            _ => {
                row.opt_text(d.name.as_deref());
            }
        }
        row.end();
        n += 1;
    }
    out.counts[t] += n;
    Ok(n)
}

/// Writes the rows of one End-page document (`versions:<KEY>`,
/// `components:<KEY>`, or a global list such as `statuses`); an unknown
/// kind writes nothing. Returns the rows written, or why the document is
/// unusable (then it writes nothing).
pub(crate) fn write_rows(out: &mut Out, what: &str, doc: &[u8]) -> Result<u64, String> {
    let Some((kind, project)) = what.split_once(':') else {
        return write_dimension(out, what, doc);
    };
    match kind {
        "versions" => {
            let list: Vec<RawVersion> = serde_json::from_slice(doc)
                .map_err(|e| format!("the versions of project {project} are not readable ({e})"))?;
            Ok(write_versions(out, project, &list))
        }
        "components" => {
            let list: Vec<RawComponent> = serde_json::from_slice(doc).map_err(|e| {
                format!("the components of project {project} are not readable ({e})")
            })?;
            Ok(write_components(out, project, &list))
        }
        _ => Ok(0),
    }
}

fn write_versions(out: &mut Out, project: &str, list: &[RawVersion]) -> u64 {
    let mut n = 0;
    for v in list {
        let Some(id) = id_of(&v.id) else { continue };
        CopyRow::of(&tables::PROJECT_VERSION, &mut out.bufs[T_PROJECT_VERSION])
            .i64(id)
            .text(project)
            .opt_i64(v.project_id.as_ref().and_then(id_of))
            .opt_text(v.name.as_deref())
            .opt_text(v.description.as_deref())
            .opt_bool(v.released)
            .opt_bool(v.archived)
            .opt_date(date_of(v.release_date.as_deref()))
            .opt_date(date_of(v.start_date.as_deref()))
            .end();
        n += 1;
    }
    out.counts[T_PROJECT_VERSION] += n;
    n
}

fn write_components(out: &mut Out, project: &str, list: &[RawComponent]) -> u64 {
    let mut n = 0;
    for c in list {
        let Some(id) = id_of(&c.id) else { continue };
        let lead = c.lead.as_ref();
        CopyRow::of(
            &tables::PROJECT_COMPONENT,
            &mut out.bufs[T_PROJECT_COMPONENT],
        )
        .i64(id)
        .text(project)
        .opt_i64(c.project_id.as_ref().and_then(id_of))
        .opt_text(c.name.as_deref())
        .opt_text(c.description.as_deref())
        .opt_text(lead.and_then(|l| l.key.as_deref()))
        .opt_text(lead.and_then(|l| l.name.as_deref()))
        .opt_text(c.assignee_type.as_deref())
        .end();
        n += 1;
    }
    out.counts[T_PROJECT_COMPONENT] += n;
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::decode_rows;

    #[test]
    fn versions_and_components_become_rows() {
        let mut out = Out::new();
        let v = br#"[{"self":"x","id":"10001","name":"1.0","archived":false,"released":true,"releaseDate":"2024-03-01","projectId":10000},
                     {"id":"10002","name":"2.0","released":false,"archived":true}]"#;
        assert_eq!(write_rows(&mut out, "versions:DEMO", v), Ok(2));
        let c = br#"[{"id":"10100","name":"API","lead":{"key":"JIRAUSER1","name":"alice"},"assigneeType":"PROJECT_DEFAULT","projectId":10000}]"#;
        assert_eq!(write_rows(&mut out, "components:DEMO", c), Ok(1));
        let rows = decode_rows(&out.bufs[T_PROJECT_VERSION]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][0].as_deref(), Some("10001"));
        assert_eq!(rows[0][1].as_deref(), Some("DEMO"));
        assert_eq!(rows[0][5].as_deref(), Some("t"));
        assert_eq!(rows[0][7].as_deref(), Some("2024-03-01"));
        assert_eq!(rows[1][7], None);
        let rows = decode_rows(&out.bufs[T_PROJECT_COMPONENT]);
        assert_eq!(rows[0][5].as_deref(), Some("JIRAUSER1"));
        assert!(write_rows(&mut out, "versions:DEMO", b"<html>").is_err());
    }

    #[test]
    fn global_dimensions_become_rows() {
        let mut out = Out::new();
        let st = br#"[{"self":"x","id":"3","name":"In Progress","statusCategory":{"id":4,"key":"indeterminate","name":"In Progress"}}]"#;
        assert_eq!(write_rows(&mut out, "statuses", st), Ok(1));
        let it = br#"[{"id":"5","name":"Sub-task","subtask":true}]"#;
        assert_eq!(write_rows(&mut out, "issuetypes", it), Ok(1));
        let pr = br#"[{"id":"10000","key":"DEMO","name":"Demo","projectTypeKey":"software"}]"#;
        assert_eq!(write_rows(&mut out, "projects", pr), Ok(1));
        let rows = decode_rows(&out.bufs[T_STATUS]);
        assert_eq!(
            rows[0],
            vec![
                Some("3".into()),
                Some("In Progress".into()),
                Some("indeterminate".into()),
                Some("In Progress".into())
            ]
        );
        assert_eq!(
            decode_rows(&out.bufs[T_ISSUE_TYPE])[0][2].as_deref(),
            Some("t")
        );
        assert_eq!(
            decode_rows(&out.bufs[T_PROJECT])[0][1].as_deref(),
            Some("DEMO")
        );
    }
}
