//! The `rows` subcommands and their lift arguments: the Synapse row store from the command
//! line.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Format, OutputArgs, ValueArgs};

/// The `rows` subcommands.
#[derive(Debug, Subcommand)]
pub enum RowsCommand {
    /// Add one row. VALUE is stored as an integer when it is a canonical decimal i64 (no sign
    /// `+`, no leading zero), else as a string (see --str).
    Add {
        /// The node's iden.
        iden: String,
        /// The property.
        prop: String,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// The row's time in epoch milliseconds (default: now).
        #[arg(long, allow_hyphen_values = true)]
        time: Option<i64>,
        #[command(flatten)]
        value_args: ValueArgs,
    },
    /// Add rows from JSON lines ({"iden","prop","valu","time"}; time optional) read from FILE or
    /// standard input, committing BATCH rows at a time.
    Import {
        /// The file to read (`-` or absent: standard input).
        file: Option<PathBuf>,
        /// Rows per atomic write.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
    },
    /// Print every row of each IDEN.
    Get {
        /// The idens.
        #[arg(required = true)]
        idens: Vec<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Lift rows by PROP: all of them, or those matching one condition.
    Lift(LiftArgs),
    /// Replace the rows of IDEN with PROP by one row with VALUE (time: now).
    Set {
        /// The node's iden.
        iden: String,
        /// The property.
        prop: String,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: String,
        #[command(flatten)]
        value_args: ValueArgs,
    },
    /// Delete every row of IDEN, or only those with PROP (and value --eq).
    Del {
        /// The node's iden.
        iden: String,
        /// Only rows with this property.
        prop: Option<String>,
        /// Only rows with this value (needs PROP).
        #[arg(long, allow_hyphen_values = true, requires = "prop")]
        eq: Option<String>,
        #[command(flatten)]
        value_args: ValueArgs,
    },
    /// Delete the rows of PROP (optionally only value --eq, inside a time window), or with
    /// --join every row of the nodes that have such a row.
    DelProp {
        /// The property.
        prop: String,
        /// Only rows with this value.
        #[arg(long, allow_hyphen_values = true)]
        eq: Option<String>,
        /// Only rows with time >= MS.
        #[arg(long, value_name = "MS", allow_hyphen_values = true)]
        min_time: Option<i64>,
        /// Only rows with time < MS.
        #[arg(long, value_name = "MS", allow_hyphen_values = true)]
        max_time: Option<i64>,
        /// Delete whole nodes.
        #[arg(long)]
        join: bool,
        #[command(flatten)]
        value_args: ValueArgs,
    },
    /// Rename property OLD to NEW on every row.
    RenameProp {
        /// The current name.
        old: String,
        /// The new name.
        new: String,
    },
    /// Replace value OLD of PROP by NEW on every row (both of the same type).
    UpdateValue {
        /// The property.
        prop: String,
        /// The value to replace.
        #[arg(allow_hyphen_values = true)]
        old: String,
        /// The replacement.
        #[arg(allow_hyphen_values = true)]
        new: String,
        #[command(flatten)]
        value_args: ValueArgs,
    },
    /// Print every row of the store (a backup, in JSON lines by default; `import` reads it).
    Dump {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
    },
}

/// Arguments of `rows lift`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("cond").args(["eq", "ge", "le", "gt", "lt", "range", "in_"])))]
pub struct LiftArgs {
    /// The property to lift.
    pub prop: String,
    /// Rows whose value equals VALUE (integer if canonical, see --str).
    #[arg(long, value_name = "VALUE", allow_hyphen_values = true)]
    pub eq: Option<String>,
    /// Integer rows with value >= N.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub ge: Option<i64>,
    /// Integer rows with value <= N.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub le: Option<i64>,
    /// Integer rows with value > N.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub gt: Option<i64>,
    /// Integer rows with value < N.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub lt: Option<i64>,
    /// Integer rows with MIN <= value < MAX.
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], allow_hyphen_values = true)]
    pub range: Option<Vec<i64>>,
    /// Whole nodes having any of these values (implies --join).
    #[arg(long = "in", num_args = 1.., value_name = "VALUE", allow_negative_numbers = true)]
    pub in_: Option<Vec<String>>,
    /// Only rows with time >= MS (not with integer lifts).
    #[arg(long, value_name = "MS", allow_hyphen_values = true)]
    pub min_time: Option<i64>,
    /// Only rows with time < MS (not with integer lifts).
    #[arg(long, value_name = "MS", allow_hyphen_values = true)]
    pub max_time: Option<i64>,
    /// At most N rows (with --join: N driving rows).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print the whole nodes of the matching rows.
    #[arg(long, conflicts_with = "count")]
    pub join: bool,
    /// Print only the number of matching rows.
    #[arg(long)]
    pub count: bool,
    #[command(flatten)]
    pub value_args: ValueArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}
