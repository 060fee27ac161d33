//! Names a careless or hostile user gives (issue 20, items 7 and 8): partition keys and folders
//! whose view names would be one name, more attribute names than `listxattr` can return, and
//! attribute names no query view can address. Through a real mount.

use std::collections::BTreeSet;

use crate::mount::Mounted;

/// Partition `p.x` and folder `x` of partition `p` (and folders with dots) are distinct links
/// in a view, each leading to its own directory.
#[test]
fn view_names_are_unique_and_lead_to_their_own_place() {
    let m = Mounted::new();
    let job = m.job_dir();
    let parts = job.parent().unwrap().parent().unwrap().parent().unwrap();
    let p = parts.display();
    m.ok(&format!(
        "mkdir {p}/p {p}/p.x && mkdir {p}/p/jobs/0/x {p}/p.x/jobs/0/a.b
         setfattr -n user.t -v 1 {p}/p/jobs/0/x {p}/p/jobs/0 {p}/p.x/jobs/0/a.b"
    ));
    let twice = m.ok("ls \"$M/query/t=1\" | sort | uniq -d");
    assert_eq!(twice, "", "listed twice");
    let listed = m.ok("ls \"$M/query/t=1\"");
    // Every name leads to a directory; no two to the same one.
    let reached = m.ok(
        "cd \"$M/query/t=1\"; for n in *; do test -d \"$n\" || exit 1; readlink -f \"$n\"; done",
    );
    let reached: Vec<&str> = reached.lines().collect();
    let distinct: BTreeSet<&str> = reached.iter().copied().collect();
    assert_eq!(distinct.len(), reached.len(), "{listed}");
    // The job under each of its partitions, and both folders.
    let expected = m.ok(&format!(
        "for d in k/jobs/0 p/jobs/0 p.x/jobs/0 p/jobs/0/x p.x/jobs/0/a.b; do
             readlink -f {p}/$d; done"
    ));
    let expected: BTreeSet<&str> = expected.lines().collect();
    assert_eq!(distinct, expected, "{listed}");
}

/// A node's attribute names stop at 64 KiB of list (XATTR_LIST_MAX), with ENOSPC as on
/// ext4; the list can still be read, by `getfattr -d` too.
#[test]
fn attribute_names_stop_before_the_list_outgrows_64_kib() {
    let m = Mounted::new();
    let f = m.job_dir().join("many.csv");
    let f = f.display();
    // 3,000 names of about 100 bytes: 300 KB of list if all were taken.
    let stopped = m.ok(&format!(
        "printf 'a,b\\n1,2\\n' > {f}
         pad=$(printf 'x%.0s' $(seq 80))
         for i in $(seq 3000); do
             name=user.attribute-$i-$pad
             if ! setfattr -n \"$name\" -v \"$i\" {f} 2>\"$T/err\"; then
                 echo \"$i $name\"; cat \"$T/err\"; exit 0
             fi
         done
         echo 'all 3000 set'"
    ));
    let mut lines = stopped.lines();
    let (at, refused) = lines.next().unwrap().split_once(' ').expect(&stopped);
    let said: String = lines.collect();
    assert!(said.contains("No space left on device"), "{stopped}");
    assert!(at.parse::<u32>().unwrap() > 100, "{stopped}");
    // The list as `listxattr` returns it: every name and a NUL.
    let list = m.ok(&format!(
        "getfattr -m - --absolute-names {f} | awk '/^user\\./ {{ n += length($0) + 1 }} END {{ print n }}'"
    ));
    let list: usize = list.trim().parse().unwrap();
    assert!(list <= 65536, "{list}");
    assert!(list + refused.len() + 1 > 65536, "{list} + {refused}");
    // `getfattr -d` reads every name and value, as `cp -a` and `rsync -X` do.
    let count = |script: &str| m.ok(script).trim().parse::<usize>().unwrap();
    let dumped = count(&format!(
        "getfattr -d --absolute-names {f} | grep -c '^user\\.'"
    ));
    let named = count(&format!(
        "getfattr -m - --absolute-names {f} | grep -c '^user\\.'"
    ));
    assert_eq!(dumped, named);
    assert!(named >= at.parse::<usize>().unwrap() - 1, "{named}");
    m.assert_fsck_clean();
}

/// `user.we=ird` and `user.a/b` would be props no query view can name: EINVAL; `user.we_ird`
/// is set and found by its view.
#[test]
fn attribute_names_a_view_cannot_address_are_refused() {
    let m = Mounted::new();
    let f = m.job_dir().join("weird.csv");
    let f = f.display();
    m.ok(&format!("printf 'a,b\\n1,2\\n' > {f}"));
    for name in ["user.we=ird", "user.a/b", "user.n>1", "user.n<1", "user.."] {
        let out = m.sh(&format!("setfattr -n '{name}' -v x {f}"));
        assert!(!out.status.success(), "{name} was set");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("Invalid argument"), "{name}: {said}");
    }
    let names = m.ok(&format!("getfattr -m '^user\\.' --absolute-names {f}"));
    assert!(
        !names.contains("user.we=ird") && !names.contains("user.a/b"),
        "{names}"
    );
    m.ok(&format!("setfattr -n user.we_ird -v x {f}"));
    let listed = m.ok("ls \"$M/query/we_ird=x\"");
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert_eq!(m.ok("cat \"$M/query/we_ird=x\"/*"), "a,b\n1,2\n");
}
