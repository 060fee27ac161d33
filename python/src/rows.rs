//! Row lifts from Python (`cronusfs rows lift` without a shell): by prop, value, integer
//! range and time window, rows or whole nodes (`join`), answered as an Arrow IPC stream built
//! here, which `pyarrow.ipc.open_stream` reads as a table: `iden`, `prop`, `valu_int`,
//! `valu_str` (one of the two is null), `time`.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use cronusfs::meta::MetaError;
use cronusfs::storage::{IntLift, PropQuery, Row, Storage, Valu};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::meta_error;
use crate::store::Store;

/// A lift's value: an integer or a string (the Python value's own type).
#[derive(FromPyObject)]
enum Value {
    Int(i64),
    Str(String),
}

impl From<Value> for Valu {
    fn from(v: Value) -> Valu {
        match v {
            Value::Int(i) => Valu::Int(i),
            Value::Str(s) => Valu::Str(s),
        }
    }
}

/// What a lift asks, as its keyword arguments give it.
struct Lift {
    prop: String,
    eq: Option<Valu>,
    int: Option<IntLift>,
    min_time: Option<i64>,
    max_time: Option<i64>,
    limit: Option<usize>,
    join: bool,
}

impl Lift {
    fn run(&self, store: &dyn Storage) -> Result<Vec<Row>, MetaError> {
        let rows = match self.int {
            Some(l) if self.join => store.joins_by_int(&self.prop, l, self.limit)?,
            Some(l) => store.rows_by_int(&self.prop, l, self.limit)?,
            None => {
                let q = PropQuery {
                    prop: &self.prop,
                    valu: self.eq.as_ref(),
                    mintime: self.min_time,
                    maxtime: self.max_time,
                    limit: self.limit,
                    after: None,
                };
                match self.join {
                    true => store.join_by_prop(&q)?,
                    false => store.rows_by_prop(&q)?,
                }
            }
        };
        Ok(rows)
    }
}

/// The integer lift the keywords ask for, if any (at most one of them).
fn int_lift(
    (ge, le, gt, lt): (Option<i64>, Option<i64>, Option<i64>, Option<i64>),
    range: Option<(i64, i64)>,
) -> PyResult<Option<IntLift>> {
    let asked = [
        ge.map(IntLift::Ge),
        le.map(IntLift::Le),
        gt.map(IntLift::Gt),
        lt.map(IntLift::Lt),
        range.map(|(lo, hi)| IntLift::Range(lo, hi)),
    ];
    let mut given = asked.into_iter().flatten();
    let first = given.next();
    if given.next().is_some() {
        return Err(PyValueError::new_err(
            "give one of ge, le, gt, lt and range_ (a range is range_=(min, max))",
        ));
    }
    Ok(first)
}

/// `rows` as one Arrow IPC stream.
fn arrow_stream(rows: &[Row]) -> Result<Vec<u8>, arrow_schema::ArrowError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("iden", DataType::Utf8, false),
        Field::new("prop", DataType::Utf8, false),
        Field::new("valu_int", DataType::Int64, true),
        Field::new("valu_str", DataType::Utf8, true),
        Field::new("time", DataType::Int64, false),
    ]));
    let int = |r: &Row| match &r.valu {
        Valu::Int(i) => Some(*i),
        Valu::Str(_) => None,
    };
    let text = |r: &Row| match &r.valu {
        Valu::Int(_) => None,
        Valu::Str(s) => Some(s.clone()),
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.iden.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.prop.as_str()),
        )),
        Arc::new(Int64Array::from_iter(rows.iter().map(int))),
        Arc::new(StringArray::from_iter(rows.iter().map(text))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.time))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &schema)?;
    writer.write(&batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

#[pymethods]
impl Store {
    /// The rows with prop `prop` (equal to `eq`, in an integer range, in a time window,
    /// at most `limit` of them; whole nodes with `join`), as an Arrow IPC stream.
    #[pyo3(signature = (prop, eq=None, ge=None, le=None, gt=None, lt=None, range_=None,
        min_time=None, max_time=None, limit=None, join=false))]
    #[allow(clippy::too_many_arguments)]
    fn lift<'py>(
        &self,
        py: Python<'py>,
        prop: String,
        eq: Option<Value>,
        ge: Option<i64>,
        le: Option<i64>,
        gt: Option<i64>,
        lt: Option<i64>,
        range_: Option<(i64, i64)>,
        min_time: Option<i64>,
        max_time: Option<i64>,
        limit: Option<usize>,
        join: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let int = int_lift((ge, le, gt, lt), range_)?;
        if int.is_some() && (eq.is_some() || min_time.is_some() || max_time.is_some()) {
            return Err(PyValueError::new_err(
                "an integer lift (ge, le, gt, lt, range_) takes no eq, min_time or max_time",
            ));
        }
        let lift = Lift {
            prop,
            eq: eq.map(Valu::from),
            int,
            min_time,
            max_time,
            limit,
            join,
        };
        let open = self.get()?;
        let rows = py.detach(|| lift.run(open.core.metastore().storage().as_ref()));
        let rows = rows.map_err(meta_error)?;
        let stream = arrow_stream(&rows).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &stream))
    }
}
