//! Where each command runs and what it needs: whether a mounted store's daemon runs it, and
//! whether it stores or reclaims content (so that it holds a session on a shared store, and
//! another host's gc waits for its writes). Every subcommand is decided here by exhaustive
//! matches, without a catch-all: a new subcommand does not build until it is decided, and the
//! test below fails when the command line gains a subcommand this file does not name.

use crate::cli::{
    Command, DatasetCommand, JobCommand, MessageCommand, PartitionCommand, RowsCommand,
    SnapshotCommand,
};

/// Returns whether the daemon of a mounted store directory runs `command` (the command line
/// sends it there); `false` for those that need the store unmounted or no store at all.
pub fn runs_in_daemon(command: &Command) -> bool {
    match command {
        Command::Rows(_)
        | Command::Menu(_)
        | Command::Config(_)
        | Command::Dataset(_)
        | Command::Partition(_)
        | Command::Job(_)
        | Command::Put { .. }
        | Command::Get { .. }
        | Command::Ls { .. }
        | Command::Find { .. }
        | Command::Gc { .. }
        | Command::Fsck { .. }
        | Command::SessionTtl { .. }
        | Command::HistoryRetention { .. }
        | Command::Diff { .. }
        | Command::Log { .. }
        | Command::Snapshot(_)
        | Command::Restore { .. }
        | Command::ExportCronus { .. } => true,
        // Made, imported into or served only while nobody else has the store open; or no
        // store at all.
        Command::Init { .. }
        | Command::Upgrade { .. }
        | Command::ImportCronus { .. }
        | Command::Mount(_)
        | Command::Umount { .. }
        | Command::Status
        | Command::Stats { .. }
        | Command::Profile { .. }
        | Command::GenMan { .. } => false,
    }
}

/// Returns what `command` does when it may store or reclaim content (it runs with a session
/// on a shared store, shown by `status` as `(cronusfs WHAT)`); `None` for the others.
pub fn stores_content(command: &Command) -> Option<&'static str> {
    match command {
        Command::Put { .. } => Some("put"),
        Command::Gc { .. } => Some("gc"),
        Command::ImportCronus { .. } => Some("import-cronus"),
        Command::Menu(m) => message_stores(m).then_some("menu"),
        Command::Config(m) => message_stores(m).then_some("config"),
        Command::Rows(rows) => match rows {
            // Rows only: no content.
            RowsCommand::Add { .. }
            | RowsCommand::Import { .. }
            | RowsCommand::Get { .. }
            | RowsCommand::Lift(_)
            | RowsCommand::Set { .. }
            | RowsCommand::Del { .. }
            | RowsCommand::DelProp { .. }
            | RowsCommand::RenameProp { .. }
            | RowsCommand::UpdateValue { .. }
            | RowsCommand::Dump { .. } => None,
        },
        Command::Dataset(d) => match d {
            DatasetCommand::Create { .. } | DatasetCommand::Ls | DatasetCommand::Show { .. } => {
                None
            }
        },
        Command::Partition(p) => match p {
            PartitionCommand::Add { .. } | PartitionCommand::Ls { .. } => None,
        },
        Command::Job(j) => match j {
            JobCommand::New { .. } | JobCommand::Ls { .. } => None,
        },
        // A restore re-references contents only history kept: it holds gc off as a put does.
        Command::Restore { .. } => Some("restore"),
        // Making a snapshot holds gc off (a lease), as a write does, until gc can see it.
        Command::Snapshot(s) => match s {
            SnapshotCommand::Create { .. } => Some("snapshot"),
            SnapshotCommand::Ls | SnapshotCommand::Rm { .. } => None,
        },
        Command::Init { .. }
        | Command::Upgrade { .. }
        | Command::Get { .. }
        | Command::Ls { .. }
        | Command::Find { .. }
        | Command::ExportCronus { .. }
        | Command::Fsck { .. }
        | Command::Mount(_)
        | Command::Umount { .. }
        | Command::Status
        | Command::Stats { .. }
        | Command::Profile { .. }
        | Command::SessionTtl { .. }
        | Command::HistoryRetention { .. }
        | Command::Diff { .. }
        | Command::Log { .. }
        | Command::GenMan { .. } => None,
    }
}

/// Whether a menu or configuration command stores a message's bytes.
fn message_stores(command: &MessageCommand) -> bool {
    match command {
        MessageCommand::New { .. } | MessageCommand::Add { .. } => true,
        MessageCommand::Ls | MessageCommand::Get { .. } => false,
    }
}

/// Every subcommand path this file decides, as the command line spells it.
#[cfg(test)]
const DECIDED: &[&str] = &[
    "init",
    "upgrade",
    "rows add",
    "rows import",
    "rows get",
    "rows lift",
    "rows set",
    "rows del",
    "rows del-prop",
    "rows rename-prop",
    "rows update-value",
    "rows dump",
    "menu new",
    "menu add",
    "menu ls",
    "menu get",
    "config new",
    "config add",
    "config ls",
    "config get",
    "dataset create",
    "dataset ls",
    "dataset show",
    "partition add",
    "partition ls",
    "job new",
    "job ls",
    "put",
    "get",
    "ls",
    "find",
    "import-cronus",
    "export-cronus",
    "gc",
    "fsck",
    "mount",
    "umount",
    "status",
    "stats",
    "profile",
    "session-ttl",
    "history-retention",
    "diff",
    "log",
    "restore",
    "snapshot create",
    "snapshot ls",
    "snapshot rm",
    "gen-man",
];

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::DECIDED;
    use crate::cli::Cli;

    /// Returns the paths of every leaf subcommand of `command`, below `prefix`.
    fn leaves(command: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        let subs: Vec<_> = command
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            out.push(prefix.trim().to_string());
        }
        for sub in subs {
            leaves(sub, &format!("{prefix} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_subcommand_is_decided_for_the_daemon_and_for_sessions() {
        let mut found = Vec::new();
        leaves(&Cli::command(), "", &mut found);
        found.sort();
        let mut decided: Vec<String> = DECIDED.iter().map(|s| s.to_string()).collect();
        decided.sort();
        assert_eq!(
            found, decided,
            "a subcommand was added or removed: decide it in src/app/placement.rs \
             (runs_in_daemon, stores_content) and list it in DECIDED"
        );
    }

    #[test]
    fn commands_that_write_content_hold_a_session_and_daemon_commands_are_forwarded() {
        let parse = |line: &str| {
            let argv = std::iter::once("cronusfs").chain(line.split(' '));
            Cli::try_parse_from(argv).unwrap().command
        };
        use clap::Parser;
        let put = parse("put - ds/k/0/x");
        assert_eq!(super::stores_content(&put), Some("put"));
        assert!(super::runs_in_daemon(&put));
        let ls = parse("menu ls");
        assert_eq!(super::stores_content(&ls), None);
        assert!(super::runs_in_daemon(&ls));
        let init = parse("init /tmp/s");
        assert!(!super::runs_in_daemon(&init));
        assert_eq!(
            super::stores_content(&parse("import-cronus /tmp/s /tmp/d")),
            Some("import-cronus")
        );
    }
}
