//! Finding nodes by metadata: the nodes whose rows match every term of a query, each term one
//! lift of the row indexes (by prop, by prop and value, by integer range), never a scan of
//! every node.

use std::collections::{HashMap, HashSet};

use super::{DatasetId, Metastore};
use crate::meta::Result;
use crate::meta::query::{Condition, Match, Term};
use crate::storage::{Iden, PropQuery, Storage};

impl<S: Storage> Metastore<S> {
    /// Returns the idens of the nodes that match every term (none for no term), in iden
    /// order.
    pub fn find(&self, terms: &[Term]) -> Result<Vec<Iden>> {
        let Some((first, rest)) = terms.split_first() else {
            return Ok(Vec::new());
        };
        let mut found = self.matching(first)?;
        for term in rest {
            if found.is_empty() {
                break;
            }
            let these = self.matching(term)?;
            found.retain(|iden| these.contains(iden));
        }
        let mut out: Vec<Iden> = found.into_iter().collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Returns the partitions under which `found` has a place: every partition of its dataset
    /// for a job (`Some(key)` each), `None` once for anything else. `known` keeps the
    /// partitions of the datasets asked about already.
    pub fn partitions_of_match(
        &self,
        found: &Match,
        known: &mut HashMap<DatasetId, Vec<String>>,
    ) -> Result<Vec<Option<String>>> {
        let Match::Job(ds, _) = found else {
            return Ok(vec![None]);
        };
        if !known.contains_key(ds) {
            known.insert(*ds, self.partitions(*ds)?);
        }
        Ok(known[ds].iter().cloned().map(Some).collect())
    }

    /// Returns every prop some node has a row of, in byte order (a skip scan of the by-prop
    /// index): what `query/` lists. The props only job entries have are left out: entries
    /// are in no tree a view could show.
    pub fn props(&self) -> Result<Vec<String>> {
        let mut props = self.store.props()?;
        props.retain(|p| !super::entries::ENTRY_ONLY_PROPS.contains(&p.as_str()));
        Ok(props)
    }

    /// Returns the distinct idens with a row matching `term`: one lift.
    fn matching(&self, term: &Term) -> Result<HashSet<Iden>> {
        let q = PropQuery::new(&term.prop);
        let rows = match &term.condition {
            Condition::Has => self.store.rows_by_prop(&q)?,
            Condition::Equals(v) => self.store.rows_by_prop(&q.valu(v))?,
            Condition::Int(lift) => self.store.rows_by_int(&term.prop, *lift, None)?,
        };
        Ok(rows.into_iter().map(|r| r.iden).collect())
    }
}
