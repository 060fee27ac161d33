//! The conformance cases of history's own reads: the commits between two times (who made
//! each, which nodes it changed) and every version of a node's rows.

use cronusfs::storage::{Actor, Stamp, with_actor};

use super::*;

fn actor(what: &str, uid: i64) -> Actor {
    Actor {
        host: "host-a".into(),
        pid: 4242,
        uid,
        what: what.into(),
    }
}

pub fn commits_say_who_and_what(s: &dyn Storage) {
    let t0 = s.history_bounds().unwrap().now;
    with_actor(actor("cronusfs put one", 1000), || {
        s.add_rows(&[row("n1", "x", 1, 1), row("n2", "x", 2, 2)])
            .unwrap()
    });
    // Timeless (a session's heartbeat) and no-op writes leave no commit.
    s.add_rows(&[row("cronusfs:session:s", "beat", 1, 1)])
        .unwrap();
    s.add_rows(&[row("n1", "x", 1, 1)]).unwrap();
    assert_eq!(s.del_rows_by_id(&iden("nobody")).unwrap(), 0);
    with_actor(actor("mount /mnt", 0), || {
        s.blob_set("info/n1", b"i").unwrap();
        s.del_rows_by_id(&iden("n2")).unwrap();
    });
    let t1 = s.history_bounds().unwrap().now;
    let commits = s.commits(t0, t1).unwrap();
    let got: Vec<(String, i64, Vec<String>)> = (commits.iter())
        .map(|c| (c.actor.what.clone(), c.actor.uid, c.nodes.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("mount /mnt".into(), 0, vec!["n2".into()]),
            ("mount /mnt".into(), 0, vec![]),
            (
                "cronusfs put one".into(),
                1000,
                vec!["n1".into(), "n2".into()]
            ),
        ],
        "newest first; a blob-only commit names no node"
    );
    assert!(
        commits
            .iter()
            .all(|c| c.actor.host == "host-a" && c.actor.pid == 4242)
    );
    assert!(commits.windows(2).all(|w| w[0].stamp > w[1].stamp));
    assert!(
        commits
            .iter()
            .all(|c| c.stamp > Stamp::end_of(t0) && c.stamp <= Stamp::end_of(t1))
    );
    assert_eq!(
        s.commits(t1, s.history_bounds().unwrap().now).unwrap(),
        vec![]
    );
    let older = s.commits(t0, commits[1].stamp.micros - 1).unwrap();
    assert_eq!(older.len(), 1, "a window holds only its commits");
    // The store as it was answers only about commits up to its time.
    let then = s.as_of(commits[2].stamp.micros).unwrap();
    assert_eq!(then.commits(t0, t1).unwrap(), commits[2..].to_vec());
    row_versions_follow_the_commits(s, &commits);
}

/// Checks the versions of n2 (added by the oldest of `commits`, deleted by the newest) and of n1 (added once, re-added: one version).
fn row_versions_follow_the_commits(s: &dyn Storage, commits: &[cronusfs::storage::Commit]) {
    let n2 = s.row_versions(&iden("n2")).unwrap();
    assert_eq!(n2.len(), 1);
    assert_eq!(n2[0].row, row("n2", "x", 2, 2));
    assert_eq!(
        (n2[0].born, n2[0].died),
        (commits[2].stamp, Some(commits[0].stamp))
    );
    let n1 = s.row_versions(&iden("n1")).unwrap();
    assert_eq!(n1.len(), 1, "re-adding a row is not a new version");
    assert_eq!((n1[0].born, n1[0].died), (commits[2].stamp, None));
    s.set_rows_by_id_prop(&iden("n1"), "x", &Valu::Int(5))
        .unwrap();
    let n1 = s.row_versions(&iden("n1")).unwrap();
    assert_eq!(n1.len(), 2);
    assert_eq!(n1[0].died, Some(n1[1].born), "replaced in one commit");
    assert_eq!(n1[1].row.valu, Valu::Int(5));
    let then = s.as_of(commits[2].stamp.micros).unwrap();
    let old = then.row_versions(&iden("n1")).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].died, None, "alive as of then");
}
