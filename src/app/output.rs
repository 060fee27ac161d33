//! Prints rows as an aligned table (times in local ISO-8601), JSON lines or TSV (times in epoch
//! milliseconds).

use std::io::{self, Write};

use cronusfs::meta::rowjson::to_json_line;
use cronusfs::storage::Row;

use crate::cli::Format;

/// Longest value shown in a table cell, in characters; longer ones are cut with `…`.
const TABLE_CELL_CHARS: usize = 60;

/// Writes `rows` to `out` in `format`.
pub fn print_rows(out: &mut dyn Write, rows: &[Row], format: Format) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    match format {
        Format::Table => write_table(&mut out, rows)?,
        Format::Jsonl => {
            for row in rows {
                writeln!(out, "{}", to_json_line(row))?;
            }
        }
        Format::Tsv => {
            for row in rows {
                let valu = row.valu.to_string();
                let cells = [row.iden.as_str(), &row.prop, &valu];
                let cells: Vec<String> = cells.iter().map(|c| tsv_escape(c)).collect();
                writeln!(out, "{}\t{}", cells.join("\t"), row.time)?;
            }
        }
    }
    out.flush()
}

fn write_table(out: &mut impl Write, rows: &[Row]) -> io::Result<()> {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                table_cell(r.iden.as_str()),
                table_cell(&r.prop),
                table_cell(&r.valu.to_string()),
                local_time(r.time),
            ]
        })
        .collect();
    let header = ["IDEN", "PROP", "VALU", "TIME"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

/// Returns epoch milliseconds `ms` as local ISO-8601 with the offset
/// (`2026-12-02T01:05:12.345+01:00`); the number itself when the C library cannot place it.
pub fn local_time(ms: i64) -> String {
    let secs: libc::time_t = ms.div_euclid(1000);
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads `secs` and writes only into `tm`, both valid for the call.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return ms.to_string();
    }
    let offset = tm.tm_gmtoff / 60;
    let sign = if offset < 0 { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{sign}{:02}:{:02}",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        ms.rem_euclid(1000),
        offset.abs() / 60,
        offset.abs() % 60
    )
}

/// Escapes control characters and cuts long text for a table cell.
fn table_cell(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    if escaped.chars().count() <= TABLE_CELL_CHARS {
        return escaped;
    }
    let mut cut: String = escaped.chars().take(TABLE_CELL_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn tsv_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}
