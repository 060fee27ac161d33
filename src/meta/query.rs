//! Queries by metadata: the terms of `cronusfs find` and of the mount's `query/` views
//! (`quality=10`, `cronus:arrow:num_rows>=1000`, `size=0..100`, `quality`), and what a node
//! that matches is in the catalogue's tree ([`Match`], folded from its rows).

use std::fmt;
use std::str::FromStr;

use super::metastore::{DatasetId, JobId, ObjectId, ObjectPath, prop};
use super::name_rules::MAX_NAME_BYTES;
use super::{MetaError, Result};
use crate::storage::{IntLift, Valu, ValuRef};

/// What a term asks of a prop's rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The node has a row of the prop (`quality`).
    Has,
    /// A row of the prop has this value (`quality=10`: a canonical decimal is an integer, as
    /// for attributes; anything else a string).
    Equals(Valu),
    /// A row of the prop is an integer in this range (`n>=5`, `n<=5`, `n>5`, `n<5`,
    /// `n=lo..hi` for `lo <= n < hi`).
    Int(IntLift),
}

/// One term of a query: a prop and what its rows must be. Several terms: a node must match
/// every one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// The row prop (`quality`, `cronus:type`).
    pub prop: String,
    /// The condition on its rows.
    pub condition: Condition,
}

fn bad_term(term: &str, reason: &'static str) -> MetaError {
    MetaError::BadName {
        what: "query term",
        name: term.chars().take(64).collect(),
        reason,
    }
}

/// Parses an integer bound of an integer term.
fn int_of(term: &str, text: &str) -> Result<i64> {
    Valu::from_text(text).as_int().ok_or_else(|| {
        bad_term(
            term,
            "the bound of <, <=, >, >= is an integer (canonical decimal)",
        )
    })
}

impl FromStr for Term {
    type Err = MetaError;

    fn from_str(term: &str) -> Result<Term> {
        let Some(at) = term.find(['=', '<', '>']) else {
            return Term::new(term, Condition::Has);
        };
        let (prop, rest) = term.split_at(at);
        let condition = if let Some(v) = rest.strip_prefix(">=") {
            Condition::Int(IntLift::Ge(int_of(term, v)?))
        } else if let Some(v) = rest.strip_prefix("<=") {
            Condition::Int(IntLift::Le(int_of(term, v)?))
        } else if let Some(v) = rest.strip_prefix('>') {
            Condition::Int(IntLift::Gt(int_of(term, v)?))
        } else if let Some(v) = rest.strip_prefix('<') {
            Condition::Int(IntLift::Lt(int_of(term, v)?))
        } else {
            let v = &rest[1..];
            match v
                .split_once("..")
                .map(|(lo, hi)| (Valu::from_text(lo).as_int(), Valu::from_text(hi).as_int()))
            {
                Some((Some(lo), Some(hi))) => Condition::Int(IntLift::Range(lo, hi)),
                _ => Condition::Equals(Valu::from_text(v)),
            }
        };
        Term::new(prop, condition)
    }
}

impl Term {
    /// Returns the term on `prop`, refusing a prop no row can have.
    pub fn new(prop: &str, condition: Condition) -> Result<Term> {
        if prop.is_empty() {
            return Err(bad_term(prop, "no prop before the condition"));
        }
        if prop.len() > crate::storage::MAX_PROP_LEN {
            return Err(bad_term(prop, "the prop is longer than 1024 bytes"));
        }
        Ok(Term {
            prop: prop.to_string(),
            condition,
        })
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.prop;
        match &self.condition {
            Condition::Has => write!(f, "{p}"),
            Condition::Equals(v) => write!(f, "{p}={v}"),
            Condition::Int(IntLift::Ge(v)) => write!(f, "{p}>={v}"),
            Condition::Int(IntLift::Le(v)) => write!(f, "{p}<={v}"),
            Condition::Int(IntLift::Gt(v)) => write!(f, "{p}>{v}"),
            Condition::Int(IntLift::Lt(v)) => write!(f, "{p}<{v}"),
            Condition::Int(IntLift::Range(lo, hi)) => write!(f, "{p}={lo}..{hi}"),
        }
    }
}

/// A node that matched, as the catalogue's tree places it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// An object (its Cronus name is unique in the whole store: it holds the uuid).
    Object {
        /// Its uuid.
        id: ObjectId,
        /// Where it is.
        path: ObjectPath,
        /// `<ds>.job_<j>.part_<key>.<uuid>.<ext>`.
        cronus_name: String,
    },
    /// A dataset.
    Dataset(DatasetId),
    /// A partition of a dataset.
    Partition(DatasetId, String),
    /// A job of a dataset (its directory is under every partition).
    Job(DatasetId, JobId),
    /// A folder or symbolic link in a job directory (`path.name` is its path there): both are
    /// shown as a link to their place.
    Folder(ObjectPath),
    /// A registered menu.
    Menu(String),
    /// A registered configuration.
    Config(String),
}

impl Match {
    /// Returns the match's name in a view: unique among the matches of a store, at most 255
    /// bytes for an object, and read back to one place (see [`escape_part`]). Objects by their
    /// Cronus name (see [`object_name`]); datasets by uuid; partitions `<ds>.part_<key>`; a job
    /// under partition `key` `<ds>.job_<j>.part_<key>`; folders that job name and their path
    /// (`<ds>.job_<j>.part_<key>.<path>`); menus `menu.<uuid>`, configurations
    /// `config.<uuid>`. Keys and paths are escaped, so the name of a partition, job or folder
    /// has at most three dots and a Cronus name at least four.
    pub fn name(&self, partition: Option<&str>) -> String {
        match self {
            Match::Object {
                id,
                path,
                cronus_name,
            } => object_name(*id, path, cronus_name),
            Match::Dataset(ds) => ds.to_string(),
            Match::Partition(ds, key) => format!("{ds}.part_{}", escape_part(key)),
            Match::Job(ds, job) => format!(
                "{ds}.job_{job}.part_{}",
                escape_part(partition.unwrap_or(""))
            ),
            Match::Folder(at) => format!(
                "{}.job_{}.part_{}.{}",
                at.dataset,
                at.job,
                escape_part(&at.partition),
                escape_part(&at.name)
            ),
            Match::Menu(uuid) => format!("menu.{uuid}"),
            Match::Config(uuid) => format!("config.{uuid}"),
        }
    }

    /// Returns the match's path from the mount's root (a job's: under `partition`).
    pub fn path(&self, partition: Option<&str>) -> String {
        let job_dir = |ds: &DatasetId, key: &str, job: &JobId| {
            format!("datasets/{ds}/partitions/{key}/jobs/{job}")
        };
        match self {
            Match::Object { path, .. } | Match::Folder(path) => format!(
                "{}/{}",
                job_dir(&path.dataset, &path.partition, &path.job),
                path.name
            ),
            Match::Dataset(ds) => format!("datasets/{ds}"),
            Match::Partition(ds, key) => format!("datasets/{ds}/partitions/{key}"),
            Match::Job(ds, job) => job_dir(ds, partition.unwrap_or(""), job),
            Match::Menu(uuid) => format!("menus/{uuid}"),
            Match::Config(uuid) => format!("configs/{uuid}"),
        }
    }
}

/// Escapes a partition key or folder path for a link's name in a view: `%` as `%25`, `.` as
/// `%2E`, `/` as `%2F`. The result holds no `.`, so the key of `<ds>.job_<j>.part_<key>.<path>`
/// ends at the first dot after `part_` (partitions `p.x` and `p` with folder `x` get two
/// names), and decoding each `%XX` gives the text back.
pub fn escape_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '.' => out.push_str("%2E"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    out
}

/// Returns the name of object `id` at `at` in a view: its Cronus name
/// `<ds>.job_<j>.part_<key>.<id>.<ext>` when the name has that shape for its place (what
/// cronusfs writes, and what a Cronus import of a produced file keeps) and fits a file name;
/// otherwise (a name over 255 bytes, an imported name of another shape) `<id>.<ext>`, or
/// `<id>` when the extension is no part of a file name. Unique either way: the uuid is in it,
/// and no link's name starts with an object's uuid.
pub fn object_name(id: ObjectId, at: &ObjectPath, cronus_name: &str) -> String {
    let stem = format!("{}.job_{}.part_{}.{id}.", at.dataset, at.job, at.partition);
    let ext = cronus_name.strip_prefix(stem.as_str());
    if ext.is_some_and(|e| !e.is_empty()) && fits_a_file_name(cronus_name) {
        return cronus_name.to_string();
    }
    if let Some((_, ext)) = cronus_name.rsplit_once('.') {
        let short = format!("{id}.{ext}");
        if !ext.is_empty() && fits_a_file_name(&short) {
            return short;
        }
    }
    id.to_string()
}

/// Returns whether `name` can be one file name: at most 255 bytes, no `/` or NUL.
fn fits_a_file_name(name: &str) -> bool {
    name.len() <= MAX_NAME_BYTES && !name.contains(['/', '\0'])
}

/// Checks that `prop` can be the prop of a query view's term, so that `query/<prop>`,
/// `query/<prop>=<value>`, … find its rows: not empty, not `.` or `..` (a path's own names),
/// and none of `/` (it ends a path component), `=`, `<`, `>` (the first of them starts a
/// term's condition) or NUL. Such a prop is read back whole by the parse of a [`Term`]; `..`
/// elsewhere in it, and any other character, is fine (a range is read in values only).
pub fn check_view_prop(prop: &str) -> Result<()> {
    let reason = if prop.is_empty() {
        "it is empty"
    } else if prop == "." || prop == ".." {
        "'.' and '..' cannot be a query view's name"
    } else if prop.contains(['=', '<', '>']) {
        "it holds '=', '<' or '>', which start a query term's condition"
    } else if prop.contains('/') {
        "it holds '/', which ends a query view's path component"
    } else if prop.contains('\0') {
        "it holds a NUL byte"
    } else {
        return Ok(());
    };
    Err(MetaError::BadName {
        what: "attribute prop",
        name: prop.chars().take(64).collect(),
        reason,
    })
}

/// What [`MatchRows::finish`] needs of a node's rows, taken one row at a time.
#[derive(Default, Debug)]
pub struct MatchRows {
    kind: Option<String>,
    uuid: Option<String>,
    name: Option<String>,
    dataset: Option<String>,
    partition: Option<String>,
    job: Option<i64>,
    object: Option<String>,
    dir: Option<String>,
}

impl MatchRows {
    /// Takes one row of the node.
    pub fn take(&mut self, p: &str, v: ValuRef<'_>) {
        let text = || match v {
            ValuRef::Str(s) => Some(s.to_string()),
            ValuRef::Int(_) => None,
        };
        match p {
            prop::KIND => self.kind = text(),
            prop::UUID => self.uuid = text(),
            prop::NAME => self.name = text(),
            prop::DATASET | prop::PARTITION_OF | prop::JOB_OF => self.dataset = text(),
            prop::PARTITION => self.partition = text(),
            prop::JOB => self.job = v.as_int(),
            prop::OBJECT => self.object = text(),
            prop::DIR => self.dir = text(),
            _ => {}
        }
    }

    /// Returns what the node is, or `None` for a node that is not in the tree (a session, a
    /// user's own node) or whose rows are incomplete.
    pub fn finish(self) -> Option<Match> {
        let dataset = || self.dataset.as_deref()?.parse::<DatasetId>().ok();
        let job = || JobId(u32::try_from(self.job?).ok()?).check().ok();
        Some(match self.kind.as_deref()? {
            "object" => Match::Object {
                id: self.uuid.as_deref()?.parse().ok()?,
                path: ObjectPath::new(
                    dataset()?,
                    self.partition.as_deref()?,
                    job()?,
                    self.object.as_deref()?,
                ),
                cronus_name: self.name?,
            },
            "dataset" => Match::Dataset(self.uuid.as_deref()?.parse().ok()?),
            "partition" => Match::Partition(dataset()?, self.partition?),
            "job" => Match::Job(dataset()?, job()?),
            "folder" | "symlink" => {
                // `cronus:dir` of a folder or link: `<ds>/<key>/<job>[/<parent path>]`.
                let dir = self.dir.as_deref()?;
                let mut parts = dir.splitn(4, '/');
                let (ds, key, job) = (parts.next()?, parts.next()?, parts.next()?);
                let job = JobId::parse_canonical(job)?;
                Match::Folder(ObjectPath::new(
                    ds.parse().ok()?,
                    key,
                    job,
                    self.object.as_deref()?,
                ))
            }
            "menu" => Match::Menu(self.uuid?),
            "config" => Match::Config(self.uuid?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_syntax_parses_and_prints_back() {
        let cases = [
            ("quality", Condition::Has),
            ("quality=10", Condition::Equals(Valu::Int(10))),
            ("quality=010", Condition::Equals(Valu::from("010"))),
            ("team=red team", Condition::Equals(Valu::from("red team"))),
            ("quality=", Condition::Equals(Valu::from(""))),
            ("n>=5", Condition::Int(IntLift::Ge(5))),
            ("n<=-5", Condition::Int(IntLift::Le(-5))),
            ("n>5", Condition::Int(IntLift::Gt(5))),
            ("n<5", Condition::Int(IntLift::Lt(5))),
            ("n=1..9", Condition::Int(IntLift::Range(1, 9))),
            ("v=a..b", Condition::Equals(Valu::from("a..b"))),
            ("k=a=b", Condition::Equals(Valu::from("a=b"))),
        ];
        for (text, condition) in cases {
            let term: Term = text.parse().unwrap();
            assert_eq!(term.condition, condition, "{text}");
            assert_eq!(term.to_string(), text);
        }
        assert_eq!(
            "cronus:arrow:num_rows>=1000".parse::<Term>().unwrap().prop,
            "cronus:arrow:num_rows"
        );
    }

    #[test]
    fn what_is_no_term_is_refused_with_a_reason() {
        for bad in ["", "=5", ">=5", "n>=ten", "n<", "n>=1.5", "n<=+3"] {
            let e = bad.parse::<Term>().unwrap_err().to_string();
            assert!(e.contains("query term"), "{bad}: {e}");
        }
        let long = format!("{}=1", "p".repeat(1025));
        assert!(long.parse::<Term>().is_err());
    }

    /// Reads an escaped key or path back: each `%XX` is the byte XX.
    fn unescape(text: &str) -> String {
        let mut bytes = Vec::new();
        let mut rest = text.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            if b == b'%' {
                let hex = std::str::from_utf8(&tail[..2]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[2..];
            } else {
                bytes.push(b);
                rest = tail;
            }
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn link_names_are_unique_and_read_back_to_their_place() {
        let ds = DatasetId::random();
        let job = JobId(0);
        let at = |key: &str, path: &str| Match::Folder(ObjectPath::new(ds, key, job, path));
        let links = [
            (Match::Job(ds, job), Some("p.x")),
            (Match::Job(ds, job), Some("p")),
            (Match::Job(ds, job), Some("p%2Ex")),
            (Match::Partition(ds, "p.x".into()), None),
            (Match::Partition(ds, "p".into()), None),
            (at("p", "x"), None),
            (at("p", "x.y/z"), None),
            (at("p.x", "y"), None),
            (at("p", "x%2Fy"), None),
        ];
        let mut seen = std::collections::HashSet::new();
        for (found, key) in &links {
            let name = found.name(*key);
            assert!(seen.insert(name.clone()), "{name} twice");
            assert!(name.matches('.').count() <= 3, "{name}");
            // The name splits at its dots into the parts of the place it leads to.
            let parts: Vec<&str> = name.split('.').collect();
            let place = match parts[..] {
                [ds, part] => format!("datasets/{ds}/partitions/{}", unescape(&part[5..])),
                [ds, j, part] => format!(
                    "datasets/{ds}/partitions/{}/jobs/{}",
                    unescape(&part[5..]),
                    &j[4..]
                ),
                [ds, j, part, path] => format!(
                    "datasets/{ds}/partitions/{}/jobs/{}/{}",
                    unescape(&part[5..]),
                    &j[4..],
                    unescape(path)
                ),
                _ => panic!("{name}"),
            };
            assert_eq!(place, found.path(*key), "{name}");
        }
        assert_eq!(escape_part("a%b.c/d"), "a%25b%2Ec%2Fd");
    }

    #[test]
    fn objects_keep_their_cronus_names_unless_no_file_name_can_hold_them() {
        let (ds, id) = (DatasetId::random(), ObjectId::random());
        let object = |key: &str, cronus_name: String| Match::Object {
            id,
            path: ObjectPath::new(ds, key, JobId(3), "f.arrow"),
            cronus_name,
        };
        let cronus = format!("{ds}.job_3.part_p.x.{id}.arrow");
        assert_eq!(object("p.x", cronus.clone()).name(None), cronus);
        // A folder of the object's own job directory named like the object: another name.
        let folder = Match::Folder(ObjectPath::new(ds, "p.x", JobId(3), &format!("{id}.arrow")));
        assert_ne!(folder.name(None), cronus);
        let long = "k".repeat(240);
        let named = object(&long, format!("{ds}.job_3.part_{long}.{id}.csv"));
        assert_eq!(named.name(None), format!("{id}.csv"));
        // An imported name of another shape: by uuid, never the name of another node.
        let odd = object("k", format!("{ds}.job_3.part_k"));
        assert_eq!(odd.name(None), format!("{id}.part_k"));
        let odd = object("k", format!("{ds}.job_3.part_k.{id}.a/b"));
        assert_eq!(odd.name(None), id.to_string());
        let odd = object("k", format!("{ds}.job_3.part_other.{id}.csv"));
        assert_eq!(odd.name(None), format!("{id}.csv"));
    }

    #[test]
    fn only_props_a_view_can_name_are_view_props() {
        for bad in ["we=ird", "a/b", "a<b", "a>b", "=", ".", "..", "", "n\0"] {
            let e = check_view_prop(bad).unwrap_err().to_string();
            assert!(e.contains("attribute prop"), "{bad:?}: {e}");
        }
        for good in [
            "we_ird",
            "a.b",
            "a..b",
            "...",
            "x:y",
            "team name",
            "%2F",
            "-1",
        ] {
            check_view_prop(good).unwrap();
            let term: Term = good.parse().unwrap();
            assert_eq!((term.prop.as_str(), term.condition), (good, Condition::Has));
            let term: Term = format!("{good}=1..9").parse().unwrap();
            assert_eq!(term.prop, good);
        }
    }
}
