//! Conformance cases of lifts read a page at a time: a lift resumed after the last row of a
//! page (`PropQuery::after`) gives the rest of the lift, so pages of any size put together are
//! the whole lift, once each, in order (a node with one row a time, as a directory member has).

use cronusfs::storage::{PropQuery, Row, Storage, Valu};

use super::row;

/// Reads `q` in pages of `size` rows, each resumed after the previous one's last row.
fn in_pages(s: &dyn Storage, q: PropQuery<'_>, size: usize) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    loop {
        let last = out.last().map(|r| (r.time, r.iden.clone()));
        let page = match &last {
            Some((time, iden)) => s.rows_by_prop(&q.after(*time, iden).limit(size)),
            None => s.rows_by_prop(&q.limit(size)),
        }
        .unwrap();
        let done = page.len() < size;
        out.extend(page);
        if done {
            return out;
        }
    }
}

pub fn lifts_resume_after_the_last_row_of_a_page(s: &dyn Storage) {
    let long = "d".repeat(300);
    let mut rows = Vec::new();
    for i in 0..25 {
        // Four nodes share each time: a page may end inside a time.
        let t = 100 + i / 4;
        rows.push(row(&format!("n{i:02}"), "dir", "here", t));
        rows.push(row(&format!("l{i:02}"), "dir", long.as_str(), t));
        rows.push(row(&format!("m{i:02}"), "dir", "elsewhere", t));
    }
    s.add_rows(&rows).unwrap();
    let here = Valu::from("here");
    let far = Valu::from(long.as_str());
    for q in [
        PropQuery::new("dir").valu(&here),
        PropQuery::new("dir").valu(&far),
        PropQuery::new("dir"),
        PropQuery::new("dir").valu(&here).mintime(102).maxtime(105),
    ] {
        let whole = s.rows_by_prop(&q).unwrap();
        assert!(!whole.is_empty());
        for size in [1, 3, 4, 7, 100] {
            assert_eq!(in_pages(s, q, size), whole, "pages of {size} of {q:?}");
        }
        let mut visited = Vec::new();
        let last = &whole[whole.len() / 2];
        s.visit_rows_by_prop(&q.after(last.time, &last.iden), &mut |r| {
            visited.push(r);
            Ok(true)
        })
        .unwrap();
        let rest: Vec<Row> = whole
            .iter()
            .filter(|r| (r.time, r.iden.as_str()) > (last.time, last.iden.as_str()))
            .cloned()
            .collect();
        assert_eq!(visited, rest, "visited after the middle of {q:?}");
    }
    let beyond = super::iden("zz");
    let q = PropQuery::new("dir").valu(&here);
    assert!(s.rows_by_prop(&q.after(200, &beyond)).unwrap().is_empty());
    assert_eq!(s.size_by_prop(&q.after(100, &beyond)).unwrap(), 21);
}
