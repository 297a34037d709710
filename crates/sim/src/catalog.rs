//! Static catalogues of the simulated Jira: issue types, statuses, priorities,
//! resolutions, link types, users, custom field definitions and word lists.
//! Everything here is constant; the per-issue choices live in `data`.

/// An issue type as `/rest/api/2/issuetype` describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct IssueType {
    pub id: &'static str,
    pub name: &'static str,
    pub subtask: bool,
    pub description: &'static str,
    pub icon: &'static str,
    /// `avatarId` in `/rest/api/2/issuetype`.
    pub avatar_id: u32,
}

pub const BUG: usize = 0;
pub const STORY: usize = 1;
pub const TASK: usize = 2;
pub const EPIC: usize = 3;
pub const SUBTASK: usize = 4;

pub static ISSUE_TYPES: [IssueType; 5] = [
    IssueType {
        id: "1",
        name: "Bug",
        subtask: false,
        description: "A problem which impairs or prevents the functions of the product.",
        icon: "bug.svg",
        avatar_id: 10303,
    },
    IssueType {
        id: "10001",
        name: "Story",
        subtask: false,
        description: "A user story. Created by Jira Software - do not edit or delete.",
        icon: "story.svg",
        avatar_id: 10315,
    },
    IssueType {
        id: "3",
        name: "Task",
        subtask: false,
        description: "A task that needs to be done.",
        icon: "task.svg",
        avatar_id: 10318,
    },
    IssueType {
        id: "10000",
        name: "Epic",
        subtask: false,
        description: "Created by Jira Software - do not edit or delete. Issue type for a big user story that needs to be broken down.",
        icon: "epic.svg",
        avatar_id: 10307,
    },
    IssueType {
        id: "5",
        name: "Sub-task",
        subtask: true,
        description: "The sub-task of the issue",
        icon: "subtask.svg",
        avatar_id: 10316,
    },
];

/// A workflow status with its category.
#[derive(Debug, PartialEq, Eq)]
pub struct Status {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub category_id: u32,
    pub category_key: &'static str,
    pub category_color: &'static str,
    pub category_name: &'static str,
}

pub const OPEN: usize = 0;
pub const IN_PROGRESS: usize = 1;
pub const IN_REVIEW: usize = 2;
pub const DONE: usize = 3;
pub const CLOSED: usize = 4;

pub static STATUSES: [Status; 5] = [
    Status {
        id: "1",
        name: "Open",
        description: "The issue is open and ready for the assignee to start work on it.",
        category_id: 2,
        category_key: "new",
        category_color: "blue-gray",
        category_name: "To Do",
    },
    Status {
        id: "3",
        name: "In Progress",
        description: "This issue is being actively worked on at the moment by the assignee.",
        category_id: 4,
        category_key: "indeterminate",
        category_color: "yellow",
        category_name: "In Progress",
    },
    Status {
        id: "10100",
        name: "In Review",
        description: "",
        category_id: 4,
        category_key: "indeterminate",
        category_color: "yellow",
        category_name: "In Progress",
    },
    Status {
        id: "10001",
        name: "Done",
        description: "",
        category_id: 3,
        category_key: "done",
        category_color: "green",
        category_name: "Done",
    },
    Status {
        id: "6",
        name: "Closed",
        description: "The issue is considered finished, the resolution is correct. Issues which are closed can be reopened.",
        category_id: 3,
        category_key: "done",
        category_color: "green",
        category_name: "Done",
    },
];

/// Index of a status by name (case-insensitive).
pub fn status_by_name(name: &str) -> Option<usize> {
    STATUSES
        .iter()
        .position(|s| s.name.eq_ignore_ascii_case(name))
}

/// A priority as `/rest/api/2/priority` describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Priority {
    pub id: &'static str,
    pub name: &'static str,
    pub icon: &'static str,
    /// `statusColor` (a CSS colour).
    pub status_color: &'static str,
    pub description: &'static str,
}

pub static PRIORITIES: [Priority; 5] = [
    Priority {
        id: "1",
        name: "Highest",
        icon: "highest.svg",
        status_color: "#d04437",
        description: "This problem will block progress.",
    },
    Priority {
        id: "2",
        name: "High",
        icon: "high.svg",
        status_color: "#f15C75",
        description: "Serious problem that could block progress.",
    },
    Priority {
        id: "3",
        name: "Medium",
        icon: "medium.svg",
        status_color: "#f79232",
        description: "Has the potential to affect progress.",
    },
    Priority {
        id: "4",
        name: "Low",
        icon: "low.svg",
        status_color: "#707070",
        description: "Minor problem or easily worked around.",
    },
    Priority {
        id: "5",
        name: "Lowest",
        icon: "lowest.svg",
        status_color: "#999999",
        description: "Trivial problem with little or no impact on progress.",
    },
];

/// A resolution as `/rest/api/2/resolution` describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolution {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

pub static RESOLUTIONS: [Resolution; 4] = [
    Resolution {
        id: "1",
        name: "Fixed",
        description: "A fix for this issue is checked into the tree and tested.",
    },
    Resolution {
        id: "2",
        name: "Won't Fix",
        description: "The problem described is an issue which will never be fixed.",
    },
    Resolution {
        id: "3",
        name: "Duplicate",
        description: "The problem is a duplicate of an existing issue.",
    },
    Resolution {
        id: "10000",
        name: "Done",
        description: "Work has been completed on this issue.",
    },
];

#[derive(Debug, PartialEq, Eq)]
pub struct LinkType {
    pub id: &'static str,
    pub name: &'static str,
    pub inward: &'static str,
    pub outward: &'static str,
}

pub static LINK_TYPES: [LinkType; 4] = [
    LinkType {
        id: "10000",
        name: "Blocks",
        inward: "is blocked by",
        outward: "blocks",
    },
    LinkType {
        id: "10001",
        name: "Cloners",
        inward: "is cloned by",
        outward: "clones",
    },
    LinkType {
        id: "10002",
        name: "Duplicate",
        inward: "is duplicated by",
        outward: "duplicates",
    },
    LinkType {
        id: "10003",
        name: "Relates",
        inward: "relates to",
        outward: "relates to",
    },
];

/// Index of a link type by name (case-insensitive).
pub fn link_type_by_name(name: &str) -> Option<usize> {
    LINK_TYPES
        .iter()
        .position(|t| t.name.eq_ignore_ascii_case(name))
}

/// A Jira DC user (users are identified by `name`; `key` is the stable id).
#[derive(Debug, PartialEq, Eq)]
pub struct User {
    pub name: &'static str,
    pub key: &'static str,
    pub display_name: &'static str,
    pub email: &'static str,
    pub active: bool,
    pub time_zone: &'static str,
}

macro_rules! user {
    ($name:expr, $key:expr, $disp:expr, $active:expr, $tz:expr) => {
        User {
            name: $name,
            key: $key,
            display_name: $disp,
            email: concat!($name, "@example.com"),
            active: $active,
            time_zone: $tz,
        }
    };
}

/// The simulator's own account (the PAT's owner).
pub static SIM_USER: User = user!(
    "sim.user",
    "JIRAUSER10000",
    "Simulator User",
    true,
    "America/New_York"
);

pub static USERS: [User; 24] = [
    user!("admin", "admin", "Administrator", true, "America/New_York"),
    user!("alice", "alice", "Alice Anderson", true, "America/New_York"),
    user!("bob", "JIRAUSER10101", "Bob Brown", true, "Europe/London"),
    user!(
        "carol",
        "JIRAUSER10102",
        "Carol Chen",
        true,
        "Asia/Shanghai"
    ),
    user!(
        "dave",
        "JIRAUSER10103",
        "Dave O'Neil",
        true,
        "America/Chicago"
    ),
    user!(
        "zoe",
        "JIRAUSER10104",
        "Zoë Ångström",
        true,
        "Europe/Stockholm"
    ),
    user!("jose", "JIRAUSER10105", "José Núñez", true, "Europe/Madrid"),
    user!("wei", "JIRAUSER10106", "李伟", true, "Asia/Shanghai"),
    user!(
        "priya",
        "JIRAUSER10107",
        "Priya Raman",
        true,
        "Asia/Kolkata"
    ),
    user!(
        "olek",
        "JIRAUSER10108",
        "Ołeksandr Ćwik",
        true,
        "Europe/Warsaw"
    ),
    user!(
        "former.employee",
        "JIRAUSER10109",
        "Former Employee",
        false,
        "America/New_York"
    ),
    user!(
        "mia",
        "JIRAUSER10110",
        "Mia \"Mimi\" Müller",
        true,
        "Europe/Berlin"
    ),
    user!(
        "sam",
        "JIRAUSER10111",
        "Sam Smith",
        true,
        "America/Los_Angeles"
    ),
    user!("yuki", "JIRAUSER10112", "山田 由紀", true, "Asia/Tokyo"),
    user!("omar", "JIRAUSER10113", "Omar Haddad", true, "Asia/Dubai"),
    user!(
        "ana",
        "JIRAUSER10114",
        "Ana Lima",
        true,
        "America/Sao_Paulo"
    ),
    user!(
        "ivan",
        "JIRAUSER10115",
        "Иван Петров",
        true,
        "Europe/Moscow"
    ),
    user!("lee", "JIRAUSER10116", "Lee Park", true, "Asia/Seoul"),
    user!("noor", "JIRAUSER10117", "Noor Ali", true, "Asia/Karachi"),
    user!(
        "tom",
        "JIRAUSER10118",
        "Tom Taylor",
        true,
        "Australia/Sydney"
    ),
    user!(
        "svc-bot",
        "JIRAUSER10119",
        "Automation Bot 🤖",
        true,
        "Etc/UTC"
    ),
    user!("eve", "JIRAUSER10120", "Eve Evans", false, "America/Denver"),
    user!(
        "kim",
        "JIRAUSER10121",
        "Kim Nguyễn",
        true,
        "Asia/Ho_Chi_Minh"
    ),
    user!(
        "back\\slash",
        "JIRAUSER10122",
        "Back\\Slash Tab\tUser",
        true,
        "Pacific/Auckland"
    ),
];

/// The value kind of a custom field (its `schema`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfKind {
    Number,
    Text,
    Option,
    MultiOption,
    User,
    DateTime,
    Date,
    Sprint,
    EpicLink,
    EpicName,
    Labels,
}

/// A custom field definition as `/rest/api/2/field` describes it.
#[derive(Debug)]
pub struct CustomField {
    pub num: u32,
    pub name: &'static str,
    pub kind: CfKind,
    pub custom: &'static str,
    /// Options (id, value) for option fields.
    pub options: &'static [(u32, &'static str)],
}

impl CustomField {
    pub fn id(&self) -> String {
        format!("customfield_{}", self.num)
    }

    /// `schema.type` and `schema.items`.
    pub fn schema(&self) -> (&'static str, Option<&'static str>) {
        match self.kind {
            CfKind::Number => ("number", None),
            CfKind::Text | CfKind::EpicName => ("string", None),
            CfKind::Option => ("option", None),
            CfKind::MultiOption => ("array", Some("option")),
            CfKind::User => ("user", None),
            CfKind::DateTime => ("datetime", None),
            CfKind::Date => ("date", None),
            CfKind::Sprint => ("array", Some("string")),
            CfKind::EpicLink => ("any", None),
            CfKind::Labels => ("array", Some("string")),
        }
    }
}

pub static SEVERITY_OPTIONS: [(u32, &str); 4] = [
    (10200, "S1 - Critical"),
    (10201, "S2 - Major"),
    (10202, "S3 - Minor"),
    (10203, "S4 - Trivial"),
];
pub static PLATFORM_OPTIONS: [(u32, &str); 5] = [
    (10300, "Linux"),
    (10301, "macOS"),
    (10302, "Windows"),
    (10303, "Android"),
    (10304, "iOS"),
];

pub const CF_STORY_POINTS: usize = 0;
pub const CF_TEAM_NOTES: usize = 1;
pub const CF_SEVERITY: usize = 2;
pub const CF_PLATFORMS: usize = 3;
pub const CF_REVIEWER: usize = 4;
pub const CF_GO_LIVE: usize = 5;
pub const CF_TARGET_DATE: usize = 6;
pub const CF_SPRINT: usize = 7;
pub const CF_EPIC_LINK: usize = 8;
pub const CF_EPIC_NAME: usize = 9;
pub const CF_TAGS: usize = 10;

pub static CUSTOM_FIELDS: [CustomField; 11] = [
    CustomField {
        num: 10100,
        name: "Story Points",
        kind: CfKind::Number,
        custom: "com.atlassian.jira.plugin.system.customfieldtypes:float",
        options: &[],
    },
    CustomField {
        num: 10101,
        name: "Team Notes",
        kind: CfKind::Text,
        custom: "com.atlassian.jira.plugin.system.customfieldtypes:textarea",
        options: &[],
    },
    CustomField {
        num: 10102,
        name: "Severity",
        kind: CfKind::Option,
        custom: "com.atlassian.jira.plugin.system.customfieldtypes:select",
        options: &SEVERITY_OPTIONS,
    },
    CustomField {
        num: 10103,
        name: "Platforms",
        kind: CfKind::MultiOption,
        custom: "com.atlassian.jira.plugin.system.customfieldtypes:multiselect",
        options: &PLATFORM_OPTIONS,
    },
    CustomField {
        num: 10104,
        name: "Reviewer",
        kind: CfKind::User,
        custom: "com.atlassian.jira.plugin.system.customfieldtypes:userpicker",
        options: &[],
    },
    CustomField {
        num: 10105,
        name: "Go Live",
        kind: CfKind::DateTime,
        custom: "com.atlassian.jira.plugin.system.customfieldtypes:datetime",
        options: &[],
    },
    CustomField {
        num: 10106,
        name: "Target Date",
        kind: CfKind::Date,
        custom: "com.atlassian.jira.plugin.system.customfieldtypes:datepicker",
        options: &[],
    },
    CustomField {
        num: 10107,
        name: "Sprint",
        kind: CfKind::Sprint,
        custom: "com.pyxis.greenhopper.jira:gh-sprint",
        options: &[],
    },
    CustomField {
        num: 10108,
        name: "Epic Link",
        kind: CfKind::EpicLink,
        custom: "com.pyxis.greenhopper.jira:gh-epic-link",
        options: &[],
    },
    CustomField {
        num: 10109,
        name: "Epic Name",
        kind: CfKind::EpicName,
        custom: "com.pyxis.greenhopper.jira:gh-epic-label",
        options: &[],
    },
    CustomField {
        num: 10110,
        name: "Tags",
        kind: CfKind::Labels,
        custom: "com.atlassian.jira.plugin.system.customfieldtypes:labels",
        options: &[],
    },
];

pub static LABELS: [&str; 16] = [
    "backend",
    "frontend",
    "ui",
    "api",
    "performance",
    "security",
    "tech-debt",
    "customer",
    "regression",
    "flaky",
    "docs",
    "ignore",
    "p1",
    "needs-triage",
    "café",
    "日本",
];

pub static WORDS: [&str; 48] = [
    "the",
    "login",
    "page",
    "fails",
    "when",
    "user",
    "clicks",
    "export",
    "button",
    "report",
    "timeout",
    "database",
    "migration",
    "should",
    "handle",
    "null",
    "values",
    "dashboard",
    "slow",
    "search",
    "index",
    "crash",
    "on",
    "startup",
    "improve",
    "error",
    "message",
    "for",
    "invalid",
    "input",
    "add",
    "support",
    "to",
    "API",
    "endpoint",
    "refactor",
    "cache",
    "layer",
    "Überprüfung",
    "naïve",
    "façade",
    "résumé",
    "日本語のテキスト",
    "данные",
    "🚀",
    "emoji 🐛 bug",
    "\"quoted\"",
    "C:\\path\\to\\file",
];

pub static COMPONENT_NAMES: [&str; 6] = [
    "Backend",
    "Frontend",
    "Database",
    "API",
    "Infrastructure",
    "Docs & Help",
];

/// A project category (`projectCategory` of a project).
#[derive(Debug, PartialEq, Eq)]
pub struct ProjectCategory {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

/// The project categories; project `i` has category `i % 3` (none for 2).
pub static PROJECT_CATEGORIES: [ProjectCategory; 2] = [
    ProjectCategory {
        id: "10000",
        name: "Engineering",
        description: "Product engineering projects",
    },
    ProjectCategory {
        id: "10001",
        name: "Operations",
        description: "Run, support & \"keep the lights on\"",
    },
];

/// Project key prefixes used when only a count of projects is given.
pub static PROJECT_KEYS: [&str; 12] = [
    "DEMO", "ALPHA", "BETA", "GAMMA", "DELTA", "EPS", "ZETA", "ETA", "THETA", "IOTA", "KAPPA",
    "LAMBDA",
];

/// `n` project keys: DEMO, ALPHA, BETA, …, then P13, P14, ….
pub fn project_keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            PROJECT_KEYS
                .get(i)
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("P{}", i + 1))
        })
        .collect()
}

/// 2023-01-01T00:00:00Z in epoch milliseconds: the earliest generated `created`.
pub const START_MS: i64 = 1_672_531_200_000;
/// 2025-12-31T23:59:59.999Z: the latest generated `created`/`updated`.
pub const END_MS: i64 = 1_767_225_599_999;
/// One day in milliseconds.
pub(crate) const DAY_MS: i64 = 86_400_000;
