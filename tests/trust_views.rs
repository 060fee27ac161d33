//! Query views and permissions (issue 20, item 2): through `--allow-other`, another user sees
//! in a view only what that user could reach by its path and read there: nothing under a
//! directory closed to them, no file whose attributes they could not read (a view must not
//! tell a value), and a looked-up name of such an entry is not there either.

use std::os::unix::fs::PermissionsExt;

use crate::mount::Mounted;

/// Runs `script` as user `nobody` with `$M` the mount point; returns whether it succeeded, its
/// stdout and its stderr.
pub fn as_nobody(m: &Mounted, script: &str) -> (bool, String, String) {
    let out = m.sh(&format!(
        "runuser -u nobody -- env M=\"$M\" bash -c '{}'",
        script.replace('\'', "'\\''")
    ));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// A mount other users can enter (the test's scratch directory is root's alone).
pub fn shared_mount() -> Mounted {
    let m = Mounted::with_options(&["--allow-other"]);
    std::fs::set_permissions(m.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    m
}

#[test]
fn a_view_shows_another_user_only_what_their_paths_allow() {
    let m = shared_mount();
    let job = m.job_dir();
    let ds = job.ancestors().nth(4).unwrap().to_path_buf();
    let ds_name = ds.file_name().unwrap().to_string_lossy().into_owned();
    m.ok(&format!(
        "umask 022; J={j}; echo payroll > $J/payroll.csv; echo open > $J/open.csv
         setfattr -n user.tag -v topsecret $J/payroll.csv $J/open.csv
         mkdir $J/sub; echo inner > $J/sub/inner.csv; setfattr -n user.tag -v topsecret $J/sub/inner.csv
         echo private > $J/private.csv; chmod 600 $J/private.csv
         setfattr -n user.tag -v hidden-value $J/private.csv",
        j = job.display()
    ));
    // Before anything is closed: nobody reads what is open to everyone, through the view too.
    let (ok, said, _) = as_nobody(&m, "cat $M/query/tag=topsecret/*");
    assert!(ok, "{said}");
    let mut lines: Vec<&str> = said.lines().collect();
    lines.sort();
    assert_eq!(lines, ["inner", "open", "payroll"]);
    // A 0600 file in a readable directory: `ls` of the directory shows it, but its attributes
    // are not nobody's to read, so no view tells that it matches.
    let (_, said, _) = as_nobody(&m, "ls $M/query/tag=hidden-value/; ls $M/query/tag/");
    assert!(!said.contains("private"), "{said}");
    let root_sees = m.ok("ls $M/query/tag=hidden-value/");
    assert_eq!(root_sees.lines().count(), 1, "{root_sees}");
    let private_name = root_sees.trim().to_string();
    let (ok, said, _) = as_nobody(
        &m,
        &format!("stat $M/query/tag=hidden-value/{private_name}"),
    );
    assert!(!ok, "a looked-up name of a hidden entry: {said}");

    // A folder closed to others: its file (0644 itself) vanishes from every view.
    m.ok(&format!("chmod 700 {}/sub", job.display()));
    let inner_uuid = m.ok(&format!(
        "getfattr --only-values -n user.cronus.uuid {}/sub/inner.csv",
        job.display()
    ));
    let (_, said, _) = as_nobody(
        &m,
        &format!("ls $M/query/cronus:uuid={inner_uuid}/; cat $M/query/cronus:uuid={inner_uuid}/*"),
    );
    assert!(!said.contains("inner"), "{said}");
    let (_, said, _) = as_nobody(&m, "cat $M/query/tag=topsecret/*");
    assert_eq!(said.lines().collect::<Vec<_>>().len(), 2, "{said}");

    // The whole dataset closed: nothing of it in any view, not even by a name seen before.
    let payroll_name = m
        .ok(&format!(
            "ls $M/query/cronus:uuid=$(getfattr --only-values -n user.cronus.uuid {}/payroll.csv)/",
            job.display()
        ))
        .trim()
        .to_string();
    m.ok(&format!("chmod 700 {}", ds.display()));
    let (ok, _, _) = as_nobody(&m, &format!("ls $M/datasets/{ds_name}"));
    assert!(!ok, "the dataset is closed to nobody");
    let (_, said, _) = as_nobody(
        &m,
        &format!(
            "ls $M/query/cronus:dataset={ds_name}/ $M/query/tag=topsecret/ $M/query/tag/; \
             cat $M/query/cronus:dataset={ds_name}/* $M/query/tag=topsecret/*; \
             cat $M/query/tag=topsecret/{payroll_name}"
        ),
    );
    assert!(
        !said.contains("payroll") && !said.contains("open"),
        "{said}"
    );
    // Nor the dataset's link: its rows are not nobody's to read any more.
    let (_, said, _) = as_nobody(&m, &format!("ls $M/query/cronus:uuid={ds_name}/"));
    assert!(!said.contains(&ds_name), "{said}");
    // Its owner still sees everything, at once (nothing the kernel kept for nobody).
    let root_sees = m.ok("cat $M/query/tag=topsecret/*");
    assert_eq!(root_sees.lines().count(), 3, "{root_sees}");
}

/// A user's link shows in a view to another user as to its owner (a link to its place), and
/// only while its directory is open to them.
#[test]
fn a_view_shows_another_user_a_link_they_could_reach() {
    let m = shared_mount();
    let job = m.job_dir();
    m.ok(&format!(
        "cd {}; echo data > v3; ln -s v3 latest",
        job.display()
    ));
    let (ok, said, _) = as_nobody(&m, "cat $M/query/cronus:kind=symlink/*");
    assert!(ok, "{said}");
    assert_eq!(said, "data\n");
    m.ok(&format!("chmod 700 {}", job.display()));
    let (_, said, _) = as_nobody(&m, "ls $M/query/cronus:kind=symlink/");
    assert_eq!(said, "", "{said}");
}
