//! Announcements of commits to a shared store: the scope a commit names, the payload that
//! tells other processes what it changed, and what a process makes of the payloads it heard.
//!
//! A payload is the idens of the nodes a commit changed, one a line, or `*` when they do not
//! fit (or one holds a character a line cannot). A commit whose changes all lie within one
//! scope (a name its writer gives a part of the store: a dataset's uuid) says so on a first
//! line `@<scope>`; a process then keeps whatever it read outside that scope. A commit that
//! names no scope, or several, may have changed anything it lists.

use std::collections::{BTreeMap, HashSet};

/// The most a payload carries (PostgreSQL's `NOTIFY` limit is 8,000 bytes).
pub const MAX_PAYLOAD: usize = 7000;

/// Where the changes of a batch lie, as its writer said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Nobody said: anywhere.
    #[default]
    Unsaid,
    /// Within this one scope.
    Within(String),
    /// Scopes that differ were said: anywhere.
    Several,
}

impl Scope {
    /// Adds that the changes lie within `scope` too.
    pub fn add(&mut self, scope: &str) {
        *self = match std::mem::take(self) {
            Scope::Unsaid => Scope::Within(scope.to_string()),
            Scope::Within(s) if s == scope => Scope::Within(s),
            Scope::Within(_) | Scope::Several => Scope::Several,
        };
    }

    /// Returns the one scope said, if exactly one was.
    pub fn one(&self) -> Option<&str> {
        match self {
            Scope::Within(s) => Some(s),
            Scope::Unsaid | Scope::Several => None,
        }
    }
}

/// What a process heard of other processes' commits to a shared store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangesElsewhere {
    /// No commit.
    Nothing,
    /// Commits whose changes are known, by the scope they named: at most one entry a scope,
    /// in the order the scopes were first heard.
    Known(Vec<ScopeChanges>),
    /// Commits whose changes are not known (too many to announce without a scope, or a
    /// reconnect lost some announcements): anything may have changed.
    Anything,
}

/// What commits that named one scope (or none) changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeChanges {
    /// The scope they named; `None`: they named none, so what they changed may be seen from
    /// anywhere.
    pub scope: Option<String>,
    /// The nodes they changed (idens, each once), or `None` when too many to say: anything
    /// within the scope.
    pub nodes: Option<Vec<String>>,
}

/// Returns the payload announcing a commit within `scope` that changed nodes `changed`;
/// `None` when no node changed.
pub fn payload(changed: &[String], scope: &Scope) -> Option<String> {
    if changed.is_empty() {
        return None;
    }
    let scope = scope.one().filter(|s| is_line(s) && !s.is_empty());
    let head = scope.map(|s| format!("@{s}\n")).unwrap_or_default();
    let lines = changed.join("\n");
    let plain = head.len() + lines.len() <= MAX_PAYLOAD
        && changed
            .iter()
            .all(|c| is_line(c) && !c.starts_with(['@', '*']));
    Some(match plain {
        true => head + &lines,
        false => head + "*",
    })
}

/// Returns `nodes` without repeats, in the order each was first named.
fn each_once(nodes: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(nodes.len());
    (nodes.into_iter())
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

/// Returns whether `s` can be one line of a payload.
fn is_line(s: &str) -> bool {
    !s.contains(['\0', '\n'])
}

impl ChangesElsewhere {
    /// Adds what `payload` announces.
    pub fn hear(self, payload: &str) -> Self {
        let (scope, body) = match payload.strip_prefix('@') {
            Some(rest) => match rest.split_once('\n') {
                Some((scope, body)) => (Some(scope.to_string()), body),
                None => (Some(rest.to_string()), "*"),
            },
            None => (None, payload),
        };
        let nodes = match body {
            "*" => None,
            body => Some(body.lines().map(str::to_string).collect()),
        };
        self.merge(ChangesElsewhere::Known(vec![ScopeChanges { scope, nodes }]))
    }

    /// Returns what `self` and `other` together announce.
    pub fn merge(self, other: Self) -> Self {
        let (mine, theirs) = match (self, other) {
            (ChangesElsewhere::Anything, _) | (_, ChangesElsewhere::Anything) => {
                return ChangesElsewhere::Anything;
            }
            (ChangesElsewhere::Nothing, other) | (other, ChangesElsewhere::Nothing) => {
                return other.settled();
            }
            (ChangesElsewhere::Known(mine), ChangesElsewhere::Known(theirs)) => (mine, theirs),
        };
        let mut order: Vec<Option<String>> = Vec::new();
        let mut by_scope: BTreeMap<Option<String>, Option<Vec<String>>> = BTreeMap::new();
        for change in mine.into_iter().chain(theirs) {
            let entry = by_scope.entry(change.scope.clone()).or_insert_with(|| {
                order.push(change.scope);
                Some(Vec::new())
            });
            match (entry.as_mut(), change.nodes) {
                (Some(known), Some(nodes)) => known.extend(nodes),
                _ => *entry = None,
            }
        }
        let known = (order.into_iter())
            .map(|scope| {
                let nodes = by_scope.remove(&scope).flatten().map(each_once);
                ScopeChanges { scope, nodes }
            })
            .collect();
        ChangesElsewhere::Known(known).settled()
    }

    /// Returns `self` with commits of unknown changes and no scope as [`Self::Anything`].
    fn settled(self) -> Self {
        match self {
            ChangesElsewhere::Known(known)
                if known.iter().any(|c| c.scope.is_none() && c.nodes.is_none()) =>
            {
                ChangesElsewhere::Anything
            }
            ChangesElsewhere::Known(known) if known.is_empty() => ChangesElsewhere::Nothing,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(scope: Option<&str>, nodes: Option<&[&str]>) -> ScopeChanges {
        ScopeChanges {
            scope: scope.map(str::to_string),
            nodes: nodes.map(|n| n.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn idens(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_payload_says_its_scope_first_and_falls_back_to_a_star() {
        let mut scope = Scope::default();
        assert_eq!(payload(&[], &scope), None);
        assert_eq!(payload(&idens(&["a", "b"]), &scope).unwrap(), "a\nb");
        scope.add("ds1");
        scope.add("ds1");
        assert_eq!(payload(&idens(&["a"]), &scope).unwrap(), "@ds1\na");
        let many = vec!["x".repeat(100); 100];
        assert_eq!(payload(&many, &scope).unwrap(), "@ds1\n*");
        assert_eq!(payload(&idens(&["@ds2"]), &scope).unwrap(), "@ds1\n*");
        assert_eq!(payload(&idens(&["a\nb"]), &Scope::Unsaid).unwrap(), "*");
        scope.add("ds2");
        assert_eq!(scope, Scope::Several);
        assert_eq!(payload(&idens(&["a"]), &scope).unwrap(), "a");
        let mut odd = Scope::default();
        odd.add("bad\nscope");
        assert_eq!(payload(&idens(&["a"]), &odd).unwrap(), "a");
    }

    #[test]
    fn what_is_heard_merges_by_scope_and_unscoped_unknowns_are_anything() {
        let heard = ChangesElsewhere::Nothing
            .hear("@d1\na\nb")
            .hear("c")
            .hear("@d2\n*")
            .hear("@d1\nb\nd")
            .hear("@d2\ne");
        let want = vec![
            known(Some("d1"), Some(&["a", "b", "d"])),
            known(None, Some(&["c"])),
            known(Some("d2"), None),
        ];
        assert_eq!(heard, ChangesElsewhere::Known(want));
        assert_eq!(heard.clone().hear("*"), ChangesElsewhere::Anything);
        assert_eq!(
            ChangesElsewhere::Nothing.merge(ChangesElsewhere::Nothing),
            ChangesElsewhere::Nothing
        );
        assert_eq!(
            heard.merge(ChangesElsewhere::Anything),
            ChangesElsewhere::Anything
        );
        let bare = ChangesElsewhere::Nothing.hear("@d3");
        assert_eq!(bare, ChangesElsewhere::Known(vec![known(Some("d3"), None)]));
    }

    #[test]
    fn a_payload_is_heard_as_it_was_said() {
        let mut scope = Scope::default();
        scope.add("d");
        let said = payload(&idens(&["x", "y"]), &scope).unwrap();
        let heard = ChangesElsewhere::Nothing.hear(&said);
        let want = vec![known(Some("d"), Some(&["x", "y"]))];
        assert_eq!(heard, ChangesElsewhere::Known(want));
    }
}
