//! `stave user create|delete|list` and `stave acl add|remove|list`: the principals of a
//! cluster started with `--auth required`, and what each may do (admin on the cluster).

use clap::{Args, Subcommand};
use stave_client::{AclEntry, Client};

use super::error::CliError;
use super::output::Table;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print its token (once: only its hash is kept). Give the token to
    /// its clients with --token-file FILE or STAVE_TOKEN.
    Create {
        /// 1 to 512 visible characters, no spaces.
        name: String,
    },
    /// Delete a user: its token stops working at once, its open streams are closed.
    Delete { name: String },
    /// List the users.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Allow a principal an operation on a resource.
    Add(AclArgs),
    /// Take an entry away (exactly as it was added); open streams it allowed are closed.
    Remove(AclArgs),
    /// List the entries.
    List {
        /// Only this principal's entries (and those of `*`).
        #[arg(long, value_name = "NAME")]
        principal: Option<String>,
    },
}

/// One ACL entry. Admin allows every operation on its resource (admin on the cluster:
/// everything); produce, consume and create each allow describe; describe on the cluster
/// allows describing every topic and group.
#[derive(Debug, Args)]
pub struct AclArgs {
    /// A user, a client certificate's common name, or `*` (anyone authenticated).
    #[arg(long, value_name = "NAME")]
    principal: String,
    /// `topic:NAME-OR-PATTERN` (`topic:v1.user.*`), `group:NAME-OR-PATTERN` or `cluster`.
    #[arg(long, value_name = "RESOURCE")]
    resource: String,
    /// produce, consume, describe, create or admin.
    #[arg(long, value_name = "OPERATION")]
    operation: String,
}

impl AclArgs {
    fn entry(&self) -> AclEntry {
        AclEntry::new(&self.principal, &self.resource, &self.operation)
    }
}

pub async fn run_user(client: &Client, command: UserCommand) -> Result<(), CliError> {
    let admin = client.admin();
    match command {
        UserCommand::Create { name } => {
            let token = admin.create_user(&name).await?;
            println!("{token}");
        }
        UserCommand::Delete { name } => admin.delete_user(&name).await?,
        UserCommand::List => {
            for name in admin.list_users().await? {
                println!("{name}");
            }
        }
    }
    Ok(())
}

pub async fn run_acl(client: &Client, command: AclCommand) -> Result<(), CliError> {
    let admin = client.admin();
    match command {
        AclCommand::Add(args) => admin.add_acl(&args.entry()).await?,
        AclCommand::Remove(args) => admin.remove_acl(&args.entry()).await?,
        AclCommand::List { principal } => {
            let mut table = Table::new(["PRINCIPAL", "RESOURCE", "OPERATION"]);
            for entry in admin.list_acls(principal.as_deref()).await? {
                table.row([entry.principal, entry.resource, entry.operation]);
            }
            print!("{}", table.render());
        }
    }
    Ok(())
}
