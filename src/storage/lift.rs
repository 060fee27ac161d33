//! Lift descriptions: prop queries (value, time window, limit, resume point), integer lifts
//! and lift names.

use std::str::FromStr;

use super::{Iden, StorageError, Valu};

/// A lift by prop: optional value, time window `[mintime, maxtime)` and limit.
#[derive(Clone, Copy, Debug)]
pub struct PropQuery<'a> {
    /// The prop to lift.
    pub prop: &'a str,
    /// Only rows with this value (int and str never match each other).
    pub valu: Option<&'a Valu>,
    /// Only rows with `time >= mintime`.
    pub mintime: Option<i64>,
    /// Only rows with `time < maxtime`.
    pub maxtime: Option<i64>,
    /// At most this many rows (for joins: driving rows).
    pub limit: Option<usize>,
    /// Only rows after those of node `iden` at `time` in the lift's order (time, then iden):
    /// the next page of a lift whose last page ended there.
    pub after: Option<(i64, &'a Iden)>,
}

impl<'a> PropQuery<'a> {
    /// Returns a query for every row of `prop`.
    pub fn new(prop: &'a str) -> Self {
        PropQuery {
            prop,
            valu: None,
            mintime: None,
            maxtime: None,
            limit: None,
            after: None,
        }
    }
    /// Returns the query restricted to rows with value `valu`.
    pub fn valu(mut self, valu: &'a Valu) -> Self {
        self.valu = Some(valu);
        self
    }
    /// Returns the query restricted to `time >= mintime`.
    pub fn mintime(mut self, mintime: i64) -> Self {
        self.mintime = Some(mintime);
        self
    }
    /// Returns the query restricted to `time < maxtime`.
    pub fn maxtime(mut self, maxtime: i64) -> Self {
        self.maxtime = Some(maxtime);
        self
    }
    /// Returns the query restricted to rows after those of `iden` at `time`, in lift order.
    pub fn after(mut self, time: i64, iden: &'a Iden) -> Self {
        self.after = Some((time, iden));
        self
    }
    /// Returns the query limited to `limit` rows.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// An integer lift. `Range(min, max)` is min-inclusive and max-exclusive; the others are as
/// their names say. All of them match integer rows only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntLift {
    /// `value >= v`.
    Ge(i64),
    /// `value <= v`.
    Le(i64),
    /// `value > v`.
    Gt(i64),
    /// `value < v`.
    Lt(i64),
    /// `min <= value < max`.
    Range(i64, i64),
}

impl IntLift {
    /// Returns the inclusive bounds `(lo, hi)` the lift covers, or `None` when it covers nothing
    /// (`Gt(i64::MAX)`, `Lt(i64::MIN)`, `Range(min, max)` with `min >= max`).
    pub fn bounds(self) -> Option<(i64, i64)> {
        match self {
            IntLift::Ge(v) => Some((v, i64::MAX)),
            IntLift::Le(v) => Some((i64::MIN, v)),
            IntLift::Gt(v) => v.checked_add(1).map(|lo| (lo, i64::MAX)),
            IntLift::Lt(v) => v.checked_sub(1).map(|hi| (i64::MIN, hi)),
            IntLift::Range(min, max) if min < max => Some((min, max - 1)),
            IntLift::Range(..) => None,
        }
    }
}

/// The names of the lifts, as the Cortex registers them (`getRowsBy("ge", …)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiftName {
    /// Equality with a value of either type.
    Eq,
    /// `>=` on integers.
    Ge,
    /// `<=` on integers.
    Le,
    /// `>` on integers.
    Gt,
    /// `<` on integers.
    Lt,
    /// `[min, max)` on integers.
    Range,
    /// Equality with any of several values (joins only).
    In,
}

impl FromStr for LiftName {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "eq" => LiftName::Eq,
            "ge" => LiftName::Ge,
            "le" => LiftName::Le,
            "gt" => LiftName::Gt,
            "lt" => LiftName::Lt,
            "range" => LiftName::Range,
            "in" => LiftName::In,
            other => return Err(StorageError::NoSuchLift(other.to_string())),
        })
    }
}

impl LiftName {
    /// Returns the integer lift this name makes with `args`, or an error when the name is not
    /// an integer lift or the argument count is wrong.
    pub fn int_lift(self, args: &[i64]) -> Result<IntLift, StorageError> {
        let bad = |n: usize| StorageError::BadValu(format!("lift {self:?} takes {n} integer(s)"));
        match (self, args) {
            (LiftName::Ge, [v]) => Ok(IntLift::Ge(*v)),
            (LiftName::Le, [v]) => Ok(IntLift::Le(*v)),
            (LiftName::Gt, [v]) => Ok(IntLift::Gt(*v)),
            (LiftName::Lt, [v]) => Ok(IntLift::Lt(*v)),
            (LiftName::Range, [a, b]) => Ok(IntLift::Range(*a, *b)),
            (LiftName::Range, _) => Err(bad(2)),
            (LiftName::Ge | LiftName::Le | LiftName::Gt | LiftName::Lt, _) => Err(bad(1)),
            (LiftName::Eq | LiftName::In, _) => Err(StorageError::BadValu(format!(
                "lift {self:?} is not an integer lift"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cover_the_edges() {
        assert_eq!(IntLift::Gt(i64::MAX).bounds(), None);
        assert_eq!(IntLift::Lt(i64::MIN).bounds(), None);
        assert_eq!(IntLift::Ge(i64::MIN).bounds(), Some((i64::MIN, i64::MAX)));
        assert_eq!(IntLift::Range(5, 5).bounds(), None);
        assert_eq!(IntLift::Range(6, 5).bounds(), None);
        assert_eq!(
            IntLift::Range(i64::MIN, i64::MAX).bounds(),
            Some((i64::MIN, i64::MAX - 1))
        );
    }

    #[test]
    fn unknown_lift_name_is_typed() {
        assert!(matches!(
            "nope".parse::<LiftName>(),
            Err(StorageError::NoSuchLift(_))
        ));
        assert_eq!("range".parse::<LiftName>().unwrap(), LiftName::Range);
    }
}
