//! Whole trees through the mount, as old programs move them: `rsync -a` of a tree with
//! symbolic links, nested folders with set times and modes, in and back out identical (and a
//! checksummed second `rsync` finds nothing to do), the same after a remount and on PostgreSQL
//! + S3; `tar -x` of it; `touch -d` on every kind of directory.

use crate::mount::Mounted;

/// Makes the source tree `$T/src`: nested folders (one empty), files, relative, absolute,
/// upward and dangling links, modes, and times set on files, links and directories last.
const MAKE_SOURCE: &str = r#"
S=$T/src
mkdir -p $S/a/b/c $S/empty
echo one > $S/a/one.txt; echo two > $S/a/b/two.txt; : > $S/a/b/c/zero
ln -s a/one.txt $S/rel; ln -s /etc/hostname $S/abs; ln -s ../one.txt $S/a/b/up
ln -s no-such-target $S/dangling
chmod 640 $S/a/one.txt; chmod 750 $S/a; chmod 700 $S/a/b; chmod 1777 $S/empty
touch -h -d 2001-02-03T04:05:06 $S/rel $S/a/b/up
touch -d 2002-03-04T05:06:07 $S/a/one.txt
touch -d 2003-04-05T06:07:08 $S/a/b/c $S/a/b $S/a $S/empty $S
"#;

/// Every entry of tree `$1` as `path type mode mtime-seconds [target]`, sorted.
const DESCRIBE: &str = r#"describe() { (cd "$1" && find . -printf '%p %y %m %Ts %l\n' | sort); }"#;

/// Asserts that `rsync -a` of the source tree into `dir` (a path in the mount) and back out
/// gives the same tree, and that a checksummed `rsync -n` after it has nothing to do.
fn rsync_round_trip(m: &Mounted, dir: &str) {
    let check = format!(
        r#"{DESCRIBE}
        left=$(rsync -a -c -n -i $T/src/ {dir}/)
        [ -z "$left" ] || {{ echo "rsync would change: $left"; exit 1; }}
        diff <(describe $T/src) <(describe {dir})
        diff -r --no-dereference $T/src {dir}
        rm -rf $T/back; rsync -aX {dir}/ $T/back/
        diff <(describe $T/src) <(describe $T/back)
        diff -r --no-dereference $T/src $T/back
        [ "$(readlink {dir}/abs)" = /etc/hostname ]
        cat {dir}/rel {dir}/a/b/up"#
    );
    assert_eq!(m.ok(&check), "one\none\n");
}

/// The source tree in, checked, then checked again after a remount.
fn trees_in_and_out(m: &Mounted) {
    let job = m.job_dir();
    let tree = format!("{}/tree", job.display());
    m.ok(MAKE_SOURCE);
    m.ok(&format!("rsync -a $T/src/ {tree}/"));
    rsync_round_trip(m, &tree);
    // `cronusfs ls` shows the links with the objects, each with its target.
    let ds = job.ancestors().nth(4).unwrap().file_name().unwrap();
    let out = m.on_store(&["ls", &format!("{}/k/0", ds.to_string_lossy())]);
    crate::mount::assert_success(&out);
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.contains("tree/rel\t9\tSYMLINK\t-\t-\t-\t-> a/one.txt\n"),
        "{listed}"
    );
    assert!(listed.contains("tree/a/b/up\t10\tSYMLINK"), "{listed}");
    assert!(
        listed.contains("tree/a/one.txt\t4\t"),
        "objects in folders too: {listed}"
    );
    m.umount();
    m.mount();
    rsync_round_trip(m, &tree);
    // tar -x of the same tree, as a new job directory's content.
    let untarred = format!("{}/untarred", job.display());
    m.ok(&format!(
        "{DESCRIBE}; tar -C $T/src -cf $T/t.tar .; mkdir {untarred}; tar -C {untarred} -xpf $T/t.tar
        diff <(describe $T/src) <(describe {untarred})"
    ));
    m.assert_fsck_clean();
}

#[test]
fn rsync_and_tar_keep_links_modes_and_times_of_a_tree() {
    trees_in_and_out(&Mounted::new());
}

#[test]
fn rsync_and_tar_keep_links_modes_and_times_of_a_tree_on_postgres_and_s3() {
    trees_in_and_out(&Mounted::shared());
}

/// `touch -d` on a dataset, a partition, a job directory and a folder shows the time set, then
/// and after a remount; the fixed directories between them refuse it.
#[test]
fn every_kind_of_directory_keeps_a_set_time() {
    let m = Mounted::new();
    let job = m.job_dir();
    let job = job.display();
    let script = format!(
        r#"J={job}; P=$(dirname $(dirname $J)); D=$(dirname $(dirname $P))
        mkdir $J/folder
        touch -d 2001-02-03T04:05:06Z $D $P $J $J/folder
        stat -c %Y $D $P $J $J/folder
        ! touch -d 2001-02-03T04:05:06Z $D/partitions 2>/dev/null
        ! touch -d 2001-02-03T04:05:06Z $P/jobs 2>/dev/null"#
    );
    let expected = "981173106\n".repeat(4);
    assert_eq!(m.ok(&script), expected);
    m.umount();
    m.mount();
    let again = format!(
        r#"J={job}; P=$(dirname $(dirname $J)); D=$(dirname $(dirname $P))
        stat -c %Y $D $P $J $J/folder"#
    );
    assert_eq!(m.ok(&again), expected);
}

/// With attributes kept a minute by the kernel, a directory that shows another's rows shows
/// their change at once: a dataset's `partitions/` its mode, a partition's `jobs/` its owner,
/// and a dataset the time its `partitions/` moved to when a partition came.
#[test]
fn directories_showing_another_s_rows_follow_it() {
    let m = Mounted::with_env(&[("CRONUSFS_ATTR_TTL_MS", "60000")]);
    let job = m.job_dir();
    let p = job.parent().unwrap().parent().unwrap().to_path_buf();
    let d = p.parent().unwrap().parent().unwrap().to_path_buf();
    let (d, p) = (d.display(), p.display());
    // The kernel holds all three before the changes.
    m.ok(&format!("stat {d}/partitions {p}/jobs {d} >/dev/null"));
    m.ok(&format!(
        "chmod 700 {d}; chown 7 {p}; mkdir {d}/partitions/k2"
    ));
    let see = format!(
        "stat -c %a {d}/partitions; stat -c %u {p}/jobs; \
         [ \"$(stat -c %y {d})\" = \"$(stat -c %y {d}/partitions)\" ] && echo same"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let said = m.ok(&see);
        if said == "700\n7\nsame\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still stale: {said}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// With attributes kept a minute by the kernel, a job directory shown under two partitions
/// follows a change made through the other: its mode after a `chmod`, its owner after a
/// `chown`, and its time after a file is made in it, a time is set on it, or a file is
/// removed from it (a hostile pass saw the old ones for as long as the kernel kept them).
#[test]
fn a_job_directory_under_every_partition_follows_a_change_through_one() {
    let m = Mounted::with_env(&[("CRONUSFS_ATTR_TTL_MS", "60000")]);
    let job = m.job_dir();
    let d = job.ancestors().nth(4).unwrap().display().to_string();
    let (j1, j2) = (
        format!("{d}/partitions/k/jobs/0"),
        format!("{d}/partitions/k2/jobs/0"),
    );
    m.ok(&format!(
        "mkdir {d}/partitions/k2 && stat {j1} {j2} >/dev/null"
    ));
    let follows = |change: &str, see: &str, want: &str| {
        m.ok(change);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let said = m.ok(see);
            if said.trim() == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "after {change}: {said}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    follows(
        &format!("chmod 711 {j1}"),
        &format!("stat -c %a {j2}"),
        "711",
    );
    follows(&format!("chown 5 {j2}"), &format!("stat -c %u {j1}"), "5");
    let same = format!("[ \"$(stat -c %Y {j1})\" = \"$(stat -c %Y {j2})\" ] && echo same");
    follows(
        &format!("touch -d 2003-03-03 {j2}"),
        &format!("stat -c %y {j1} | cut -c1-10"),
        "2003-03-03",
    );
    follows(&format!("echo n > {j1}/new"), &same, "same");
    follows(
        &format!("touch -d 2004-04-04 {j1}"),
        &format!("stat -c %y {j2} | cut -c1-10"),
        "2004-04-04",
    );
    follows(&format!("rm {j1}/new"), &same, "same");
}

/// A file rewritten over and over (`O_TRUNC`, write, close) while another process renames
/// its folder back and forth: every `close` that follows a successful open succeeds and its
/// bytes become a version, the commit following the object to its folder's new name (it
/// failed with ENOENT, "no folder …", and lost the write, 161 closes of 1,130 in a hostile
/// pass, before the commit looked the object up in its own transaction).
#[test]
fn a_file_rewritten_while_its_folder_is_renamed_loses_no_close() {
    let m = Mounted::new();
    let job = m.job_dir();
    let script = r#"
import os, sys, time
job = sys.argv[1]
folder = os.path.join(job, "rfold")
os.mkdir(folder)
with open(os.path.join(folder, "x"), "wb") as f:
    f.write(b"start")
end = time.time() + 4
pid = os.fork()
if pid == 0:
    while time.time() < end:
        os.rename(folder, folder + "2")
        os.rename(folder + "2", folder)
    os._exit(0)
closed, last = 0, None
i = 0
while time.time() < end:
    try:
        fd = os.open(os.path.join(folder, "x"), os.O_WRONLY | os.O_TRUNC)
    except FileNotFoundError:
        continue
    os.write(fd, b"w%d" % i)
    os.close(fd)  # raises on a failed commit
    closed, last = closed + 1, i
    i += 1
os.waitpid(pid, 0)
assert closed > 20, closed
got = open(os.path.join(folder, "x"), "rb").read()
assert got == b"w%d" % last, (got, last)
print(closed, os.getxattr(os.path.join(folder, "x"), "user.cronus.version").decode())
"#;
    let out = std::process::Command::new("timeout")
        .args(["120", "python3", "-c", script])
        .arg(&job)
        .output()
        .unwrap();
    crate::mount::assert_success(&out);
    let said = String::from_utf8(out.stdout).unwrap();
    let (closed, version) = said.trim().split_once(' ').unwrap();
    let closed: u64 = closed.parse().unwrap();
    assert_eq!(
        version.parse::<u64>().unwrap(),
        closed + 1,
        "a version per close: {said}"
    );
    m.umount();
}
