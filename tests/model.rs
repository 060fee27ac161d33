//! A plain model of the row store: a list of distinct rows, with the documented semantics and
//! result order written directly from `docs/DESIGN.md`, independent of the key encoding.

use std::collections::HashSet;

use cronusfs::storage::{Iden, IntLift, PropQuery, Row, Valu};

/// The documented value order: integers ascending, then strings of at most 128 bytes in byte
/// order, then longer strings by the first 16 bytes of their BLAKE3 hash.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum ValuOrder {
    Int(i64),
    Short(Vec<u8>),
    Long([u8; 16]),
}

fn valu_order(v: &Valu) -> ValuOrder {
    match v {
        Valu::Int(i) => ValuOrder::Int(*i),
        Valu::Str(s) if s.len() <= 128 => ValuOrder::Short(s.as_bytes().to_vec()),
        Valu::Str(s) => ValuOrder::Long(
            blake3::hash(s.as_bytes()).as_bytes()[..16]
                .try_into()
                .unwrap(),
        ),
    }
}

/// Errors the model predicts, by name.
pub type ModelResult<T> = Result<T, &'static str>;

#[derive(Clone, Default)]
pub struct Model {
    rows: Vec<Row>,
}

fn check_prop(p: &str) -> ModelResult<()> {
    if p.is_empty() || p.len() > 1024 {
        Err("BadProp")
    } else {
        Ok(())
    }
}

fn take(rows: Vec<Row>, limit: Option<usize>) -> Vec<Row> {
    rows.into_iter().take(limit.unwrap_or(usize::MAX)).collect()
}

impl Model {
    pub fn all(&self) -> Vec<Row> {
        self.rows.clone()
    }

    pub fn add_rows(&mut self, rows: &[Row]) -> ModelResult<()> {
        for r in rows {
            check_prop(&r.prop)?;
        }
        for r in rows {
            if !self.rows.contains(r) {
                self.rows.push(r.clone());
            }
        }
        Ok(())
    }

    pub fn rows_by_id(&self, iden: &Iden) -> Vec<Row> {
        let mut out: Vec<Row> = self
            .rows
            .iter()
            .filter(|r| &r.iden == iden)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (a.prop.as_bytes(), valu_order(&a.valu), a.time).cmp(&(
                b.prop.as_bytes(),
                valu_order(&b.valu),
                b.time,
            ))
        });
        out
    }

    pub fn rows_by_id_prop(
        &self,
        iden: &Iden,
        prop: &str,
        valu: Option<&Valu>,
    ) -> ModelResult<Vec<Row>> {
        check_prop(prop)?;
        Ok(self
            .rows_by_id(iden)
            .into_iter()
            .filter(|r| r.prop == prop && valu.is_none_or(|v| &r.valu == v))
            .collect())
    }

    pub fn rows_by_prop(&self, q: &PropQuery<'_>) -> ModelResult<Vec<Row>> {
        check_prop(q.prop)?;
        let mut out: Vec<Row> = self
            .rows
            .iter()
            .filter(|r| r.prop == q.prop && q.valu.is_none_or(|v| &r.valu == v))
            .filter(|r| {
                q.mintime.is_none_or(|t| r.time >= t) && q.maxtime.is_none_or(|t| r.time < t)
            })
            .filter(|r| {
                q.after.is_none_or(|(t, iden)| {
                    (r.time, r.iden.as_str().as_bytes()) > (t, iden.as_str().as_bytes())
                })
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (a.time, a.iden.as_str().as_bytes(), valu_order(&a.valu)).cmp(&(
                b.time,
                b.iden.as_str().as_bytes(),
                valu_order(&b.valu),
            ))
        });
        if q.valu.is_some() {
            // The by-value index orders by value first; with one value that is time, then iden.
            out.sort_by(|a, b| {
                (a.time, a.iden.as_str().as_bytes()).cmp(&(b.time, b.iden.as_str().as_bytes()))
            });
        }
        Ok(take(out, q.limit))
    }

    pub fn size_by_prop(&self, q: &PropQuery<'_>) -> ModelResult<usize> {
        Ok(self.rows_by_prop(q)?.len())
    }

    fn join(&self, driving: Vec<Row>) -> Vec<Row> {
        let mut seen = HashSet::new();
        driving
            .into_iter()
            .filter(|r| seen.insert(r.iden.clone()))
            .flat_map(|r| self.rows_by_id(&r.iden))
            .collect()
    }

    pub fn join_by_prop(&self, q: &PropQuery<'_>) -> ModelResult<Vec<Row>> {
        Ok(self.join(self.rows_by_prop(q)?))
    }

    pub fn rows_by_int(
        &self,
        prop: &str,
        lift: IntLift,
        limit: Option<usize>,
    ) -> ModelResult<Vec<Row>> {
        check_prop(prop)?;
        let inside = |v: i64| match lift {
            IntLift::Ge(x) => v >= x,
            IntLift::Le(x) => v <= x,
            IntLift::Gt(x) => v > x,
            IntLift::Lt(x) => v < x,
            IntLift::Range(lo, hi) => lo <= v && v < hi,
        };
        let mut out: Vec<Row> = self
            .rows
            .iter()
            .filter(|r| r.prop == prop && r.valu.as_int().is_some_and(inside))
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (a.valu.as_int(), a.time, a.iden.as_str().as_bytes()).cmp(&(
                b.valu.as_int(),
                b.time,
                b.iden.as_str().as_bytes(),
            ))
        });
        Ok(take(out, limit))
    }

    pub fn joins_by_int(
        &self,
        prop: &str,
        lift: IntLift,
        limit: Option<usize>,
    ) -> ModelResult<Vec<Row>> {
        Ok(self.join(self.rows_by_int(prop, lift, limit)?))
    }

    pub fn joins_by_in(
        &self,
        prop: &str,
        valus: &[Valu],
        limit: Option<usize>,
    ) -> ModelResult<Vec<Row>> {
        check_prop(prop)?;
        let mut idens: Vec<Iden> = Vec::new();
        for v in valus {
            for r in self.rows_by_prop(&PropQuery::new(prop).valu(v))? {
                if !idens.contains(&r.iden) && limit.is_none_or(|l| idens.len() < l) {
                    idens.push(r.iden);
                }
            }
        }
        Ok(idens.iter().flat_map(|i| self.rows_by_id(i)).collect())
    }

    fn remove(&mut self, gone: &[Row]) -> usize {
        self.rows.retain(|r| !gone.contains(r));
        gone.len()
    }

    pub fn del_rows_by_id(&mut self, iden: &Iden) -> usize {
        let gone = self.rows_by_id(iden);
        self.remove(&gone)
    }

    pub fn del_rows_by_prop(&mut self, q: &PropQuery<'_>) -> ModelResult<usize> {
        let gone = self.rows_by_prop(&PropQuery { limit: None, ..*q })?;
        Ok(self.remove(&gone))
    }

    pub fn del_rows_by_id_prop(
        &mut self,
        iden: &Iden,
        prop: &str,
        valu: Option<&Valu>,
    ) -> ModelResult<usize> {
        let gone = self.rows_by_id_prop(iden, prop, valu)?;
        Ok(self.remove(&gone))
    }

    pub fn del_join_by_prop(&mut self, q: &PropQuery<'_>) -> ModelResult<usize> {
        let gone = self.join_by_prop(&PropQuery { limit: None, ..*q })?;
        Ok(self.remove(&gone))
    }

    /// Applies `set_rows_by_id_prop` with the time the store chose.
    pub fn set_rows_by_id_prop(
        &mut self,
        iden: &Iden,
        prop: &str,
        valu: &Valu,
        time: i64,
    ) -> ModelResult<()> {
        self.del_rows_by_id_prop(iden, prop, None)?;
        self.add_rows(&[Row::new(iden, prop, valu.clone(), time)])
    }

    pub fn update_property(&mut self, old: &str, new: &str) -> ModelResult<usize> {
        check_prop(old)?;
        check_prop(new)?;
        if old == new {
            return Err("BadProp");
        }
        let moved = self.rows_by_prop(&PropQuery::new(old))?;
        self.remove(&moved);
        let renamed: Vec<Row> = moved
            .iter()
            .map(|r| Row {
                prop: new.to_string(),
                ..r.clone()
            })
            .collect();
        self.add_rows(&renamed)?;
        Ok(moved.len())
    }

    pub fn update_property_valu(
        &mut self,
        prop: &str,
        old: &Valu,
        new: &Valu,
    ) -> ModelResult<usize> {
        check_prop(prop)?;
        if old.type_name() != new.type_name() || old == new {
            return Err("BadValu");
        }
        let changed = self.rows_by_prop(&PropQuery::new(prop).valu(old))?;
        self.remove(&changed);
        let updated: Vec<Row> = changed
            .iter()
            .map(|r| Row {
                valu: new.clone(),
                ..r.clone()
            })
            .collect();
        self.add_rows(&updated)?;
        Ok(changed.len())
    }
}
