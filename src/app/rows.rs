//! `cronusfs rows …`: the Synapse row operations from the command line.

use std::io::{BufRead, BufReader};

use anyhow::{Context, Result, bail};
use cronusfs::meta::rowjson::from_json_line;
use cronusfs::storage::{Iden, IntLift, PropQuery, Row, Storage, Valu, now_millis};

use super::Console;
use super::output::print_rows;
use crate::cli::{LiftArgs, RowsCommand, ValueArgs};

/// Runs one `rows` subcommand against `store`.
pub fn run(store: &dyn Storage, io: &mut Console<'_>, cmd: RowsCommand) -> Result<()> {
    match cmd {
        RowsCommand::Add {
            iden,
            prop,
            value,
            time,
            value_args,
        } => {
            let row = Row {
                iden: Iden::new(iden)?,
                prop,
                valu: valu(&value, &value_args),
                time: time.unwrap_or_else(now_millis),
            };
            store.add_rows(&[row])?;
        }
        RowsCommand::Import { file, batch } => import(store, io, file.as_deref(), batch as usize)?,
        RowsCommand::Get { idens, output } => {
            let idens = idens
                .into_iter()
                .map(Iden::new)
                .collect::<Result<Vec<_>, _>>()?;
            print_rows(io.out, &store.rows_by_idens(&idens)?, output.format)?;
        }
        RowsCommand::Lift(args) => lift(store, io, &args)?,
        RowsCommand::Set {
            iden,
            prop,
            value,
            value_args,
        } => {
            store.set_rows_by_id_prop(&Iden::new(iden)?, &prop, &valu(&value, &value_args))?;
        }
        RowsCommand::Del {
            iden,
            prop,
            eq,
            value_args,
        } => {
            let iden = Iden::new(iden)?;
            let eq = eq.map(|v| valu(&v, &value_args));
            let n = match prop {
                Some(prop) => store.del_rows_by_id_prop(&iden, &prop, eq.as_ref())?,
                None => store.del_rows_by_id(&iden)?,
            };
            writeln!(io.out, "deleted {n} rows")?;
        }
        RowsCommand::DelProp {
            prop,
            eq,
            min_time,
            max_time,
            join,
            value_args,
        } => {
            let eq = eq.map(|v| valu(&v, &value_args));
            let q = PropQuery {
                prop: &prop,
                valu: eq.as_ref(),
                mintime: min_time,
                maxtime: max_time,
                limit: None,
                after: None,
            };
            let n = if join {
                store.del_join_by_prop(&q)?
            } else {
                store.del_rows_by_prop(&q)?
            };
            writeln!(io.out, "deleted {n} rows")?;
        }
        RowsCommand::RenameProp { old, new } => {
            writeln!(
                io.out,
                "renamed {} rows",
                store.update_property(&old, &new)?
            )?;
        }
        RowsCommand::UpdateValue {
            prop,
            old,
            new,
            value_args,
        } => {
            let n = store.update_property_valu(
                &prop,
                &valu(&old, &value_args),
                &valu(&new, &value_args),
            )?;
            writeln!(io.out, "updated {n} rows")?;
        }
        RowsCommand::Dump { format } => {
            for chunk in store.backup_rows(1000) {
                print_rows(io.out, &chunk?, format)?;
            }
        }
    }
    Ok(())
}

fn valu(text: &str, args: &ValueArgs) -> Valu {
    if args.force_str {
        Valu::Str(text.to_string())
    } else {
        Valu::from_text(text)
    }
}

fn lift(store: &dyn Storage, io: &mut Console<'_>, a: &LiftArgs) -> Result<()> {
    let int_lift = int_lift(a);
    if int_lift.is_some() && (a.min_time.is_some() || a.max_time.is_some()) {
        bail!(
            "--min-time/--max-time do not apply to integer lifts (--ge, --le, --gt, --lt, --range)"
        );
    }
    if let Some(values) = &a.in_ {
        let values: Vec<Valu> = values.iter().map(|v| valu(v, &a.value_args)).collect();
        return finish(
            io,
            a,
            Lifted::Rows(store.joins_by_in(&a.prop, &values, a.limit)?),
        );
    }
    let lifted = if let Some(l) = int_lift {
        match (a.count, a.join) {
            (true, _) => Lifted::Count(store.size_by_int(&a.prop, l, a.limit)?),
            (false, true) => Lifted::Rows(store.joins_by_int(&a.prop, l, a.limit)?),
            (false, false) => Lifted::Rows(store.rows_by_int(&a.prop, l, a.limit)?),
        }
    } else {
        let eq = a.eq.as_ref().map(|v| valu(v, &a.value_args));
        let q = PropQuery {
            prop: &a.prop,
            valu: eq.as_ref(),
            mintime: a.min_time,
            maxtime: a.max_time,
            limit: a.limit,
            after: None,
        };
        match (a.count, a.join) {
            (true, _) => Lifted::Count(store.size_by_prop(&q)?),
            (false, true) => Lifted::Rows(store.join_by_prop(&q)?),
            (false, false) => Lifted::Rows(store.rows_by_prop(&q)?),
        }
    };
    finish(io, a, lifted)
}

enum Lifted {
    Rows(Vec<Row>),
    Count(usize),
}

fn finish(io: &mut Console<'_>, a: &LiftArgs, lifted: Lifted) -> Result<()> {
    match lifted {
        Lifted::Count(n) => writeln!(io.out, "{n}")?,
        Lifted::Rows(rows) => print_rows(io.out, &rows, a.output.format)?,
    }
    Ok(())
}

fn int_lift(a: &LiftArgs) -> Option<IntLift> {
    let range = a.range.as_deref().map(|r| IntLift::Range(r[0], r[1]));
    a.ge.map(IntLift::Ge)
        .or(a.le.map(IntLift::Le))
        .or(a.gt.map(IntLift::Gt))
        .or(a.lt.map(IntLift::Lt))
        .or(range)
}

/// Reads JSON-lines rows and adds them `batch` rows per atomic write.
fn import(
    store: &dyn Storage,
    io: &mut Console<'_>,
    file: Option<&std::path::Path>,
    batch: usize,
) -> Result<()> {
    let mut reader: Box<dyn BufRead + '_> = match file {
        Some(p) if p.as_os_str() != "-" => {
            let p = io.path(p);
            Box::new(BufReader::new(
                std::fs::File::open(&p).with_context(|| format!("cannot open {}", p.display()))?,
            ))
        }
        _ => Box::new(BufReader::new(&mut *io.input)),
    };
    let (mut pending, mut total) = (Vec::with_capacity(batch), 0usize);
    for (n, line) in (&mut reader).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        pending.push(from_json_line(&line).with_context(|| format!("line {}", n + 1))?);
        if pending.len() == batch {
            store.add_rows(&pending)?;
            total += pending.len();
            pending.clear();
        }
    }
    store.add_rows(&pending)?;
    total += pending.len();
    drop(reader);
    writeln!(io.out, "imported {total} rows")?;
    Ok(())
}
