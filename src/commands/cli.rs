//! The command line's definition: its arguments, their help and their
//! completions. [`super::main`] dispatches on it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter};

use super::complete;

#[derive(Parser, Debug)]
#[command(
    name = "svc",
    version,
    about = "Keep OAuth 2.0 access tokens fresh: declare secrets, roles, services and schedules in .svc files",
    long_about = "svc reads .svc files that declare secrets, roles, users and service accounts, \
                  and services whose endpoints refresh tokens. `svc check` lints them; the other \
                  commands run them and manage the encrypted secret store.",
    after_help = "Exit codes, the same in every command:\n  \
                  0    success\n  \
                  1    it ran and failed: check errors, a failed run or authorization, a problem `svc doctor` found, a backend failure\n  \
                  2    nothing was done: bad arguments or input (no project, a program with errors, an unknown environment or name, no identity, a missing store or secret value)\n  \
                  3    permission denied: the identity may not do what was asked\n  \
                  4    the connection needs a person: its refresh token is dead, its client refused or its tokens revoked (`svc authorize` again)\n  \
                  141  standard output was closed by its reader (`svc secret list | head -1`)"
)]
pub struct Cli {
    /// The project: a directory holding svc.toml, or the file [default: found by walking up from the program path or the current directory]
    #[arg(long, global = true, env = "SVC_PROJECT", value_name = "PATH")]
    pub project: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check .svc files: syntax, names, types, permissions and secret rules
    #[command(
        long_about = "Parses and checks .svc files without running anything. A directory loads every \
                      .svc file below it as one program. With no path, the project's program (`program` \
                      in svc.toml); with no path and no svc.toml here or above, it refuses.\n\n\
                      Exits 0 when there are no errors (warnings allowed), 1 when there are errors \
                      (or warnings with --deny-warnings), 2 when files cannot be read.\n\n\
                      --fix applies the fixes that keep what the program means (a guard around an \
                      update, an unused variable removed, a method listed twice), checks again, and \
                      reports what is left; --unsafe-fixes applies those that need review too (a \
                      misspelt name's nearest match, a missing grant, a declaration). --fix --diff \
                      prints the changes instead, and exits 1 when there are some.",
        after_help = "Examples:\n  svc check\n  svc check --fix\n  svc check --fix --unsafe-fixes --diff"
    )]
    Check(CheckArgs),

    /// Format .svc files in one canonical layout
    #[command(
        long_about = "Rewrites .svc files in one canonical layout: two-space indentation, aligned `=` \
                      in request fields, result mappings and secret update blocks, one blank line \
                      between declarations. Comments stay where they were; the program's meaning never \
                      changes. A directory formats every .svc file below it; `-` formats standard input \
                      to standard output.\n\n\
                      Exits 0 when every file is formatted, 1 with --check when some would change \
                      (they are listed), 2 when a file cannot be read or parsed."
    )]
    Fmt(FmtArgs),

    /// Print a checked program as JSON (ast), an OpenAPI 3.1 document, or a Graphviz graph (dot)
    #[command(
        long_about = "Checks the program, then prints it in another form: `ast`, the checked AST as JSON \
                      (spans index the listed files); `openapi`, the OpenAPI 3.1 document of its endpoints, \
                      the one `svc serve` publishes; `dot`, a Graphviz graph of services, endpoints, actions, \
                      schedules and the secrets each action reads and updates. A program with errors is not \
                      compiled (exit 1).",
        after_help = "Example: svc compile examples/hubspot_refresh.svc --emit dot | dot -Tsvg > hubspot.svg"
    )]
    Compile(CompileArgs),

    /// Start a project: an example program, an identity, and an empty dev store
    #[command(
        long_about = "Creates a starter project in DIR (default: the current directory): an example \
                      .svc file, secrets/dev.recipients and an empty encrypted dev store, and a .gitignore \
                      that keeps identities, logs and state out of git. The store is encrypted to your age \
                      identity: --identity FILE uses one you have; otherwise svc creates one at \
                      ~/.config/svc/identity.txt (or reuses it) after asking, or with --yes."
    )]
    Init(InitArgs),

    /// Print a shell completion script: it asks svc for the project's names as you type
    #[command(
        long_about = "Prints the script that makes SHELL complete svc's command lines. The script \
                      asks svc itself as you type (COMPLETE=SHELL svc ...), so `--as`, `--env`, \
                      SERVICE.ENDPOINT, secret and client names come from the project of the \
                      current directory: its program and svc.toml, and the stores found.",
        after_help = "Example: svc completions bash > ~/.local/share/bash-completion/completions/svc"
    )]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the manual page (roff)
    #[command(after_help = "Example: svc man > ~/.local/share/man/man1/svc.1")]
    Man,

    /// Manage secret values: one age-encrypted store per environment
    #[command(
        subcommand,
        long_about = "Manage secret values. Each environment has one store, SECRETS_DIR/ENV.age, \
                      encrypted with age to the public keys in SECRETS_DIR/ENV.recipients. Reading \
                      needs an identity (--identity FILE or SVC_IDENTITY): an age identity file as \
                      age-keygen writes it, or an unencrypted OpenSSH private key.\n\n\
                      Only `svc secret get` prints a value."
    )]
    Secret(SecretCommand),

    /// Run an endpoint: fetch a token, map it out of the response, update the secrets
    #[command(
        long_about = "Checks the program, then runs one endpoint's action node by node, as the \
                      given user or service account, in the given environment. Secrets are read from \
                      and written to that environment's store. A run that can update secrets holds a \
                      lock on (environment, endpoint) from start to end, so two runs never spend the \
                      same refresh token.\n\n\
                      Exit codes: 0 success, 1 the run failed, 2 usage or script errors, 3 permission denied.",
        after_help = "Example: svc run examples/hubspot_refresh.svc hubspot.refresh --env dev --as ops_oncall"
    )]
    Run(RunArgs),

    /// Get an oauth_client's first tokens with a person's consent, and store them
    #[command(
        long_about = "Runs the OAuth 2.0 authorization code flow with PKCE (S256) for an                       `oauth_client`: prints the authorization URL (and opens a browser when there                       is one), waits for the redirect on a loopback listener, checks its `state`,                       exchanges the code, and writes the tokens the client `stores` in one atomic                       update of the environment's store, with their expiry. With --device, runs the                       device authorization grant instead: prints a code to enter on another device                       and polls until it is approved. Runs as the identity given by --as, which must                       hold `update_secret` on every secret the client stores.\n\n\
                      Exit codes: 0 stored, 1 the authorization failed (nothing stored), 2 usage or \
                      script errors, 3 permission denied. See docs/authorize.md.",
        after_help = "Example: svc authorize examples/hubspot_refresh.svc hubspot_app --env dev --as ops_oncall"
    )]
    Authorize(AuthorizeArgs),

    /// Show the runs recorded in an endpoint's log
    Logs(LogsArgs),

    /// Serve the Language Server Protocol on standard input and output, for editors
    #[command(
        long_about = "Speaks the Language Server Protocol (3.17) on standard input and output: \
                      diagnostics as you type (the checks of `svc check`), hover, go to definition, \
                      references, symbols, completion, rename, formatting and quick fixes. Each \
                      workspace folder is one program, as `svc check DIR` loads it; a file opened \
                      outside every folder is a program of its own. Editors start it; see \
                      docs/tooling.md.",
        after_help = "Example (Neovim): vim.lsp.config('svc', { cmd = { 'svc', 'lsp' }, filetypes = { 'svc' } })"
    )]
    Lsp,

    /// Serve endpoints over HTTP to other apps, an API explorer, metrics, and run the schedules
    #[command(
        long_about = "Loads and checks the program, then serves one environment: runs endpoints for \
                      callers with an API key (svc key create), publishes an OpenAPI document and an \
                      API explorer at /explorer, answers /healthz and /metrics, and fires the program's \
                      schedules. SIGTERM or SIGINT stops it gracefully. See docs/serve.md.",
        after_help = "Example: svc serve examples/ --env prod --listen 127.0.0.1:8700"
    )]
    Serve(ServeArgs),

    /// Manage the API keys of `svc serve`
    #[command(subcommand)]
    Key(KeyCommand),

    /// Where state is kept: the PostgreSQL backend's status, and migration from files
    #[command(subcommand)]
    Backend(BackendCommand),

    /// Inspect schedules: next fire times and last outcomes
    #[command(subcommand)]
    Schedule(ScheduleCommand),

    /// Inspect connections: whether each oauth_client's tokens still work, how to re-consent; revoke them
    #[command(subcommand)]
    Connection(ConnectionCommand),

    /// The provider profiles: what svc knows about each OAuth 2.0 provider, with its sources
    #[command(
        subcommand,
        long_about = "The provider profiles compiled into svc (providers/*.toml): each provider's \
                      endpoints, client authentication, rotation, token lifetimes, the scopes and \
                      parameters it needs to issue a refresh token and how it says a refresh \
                      failed, every value with the documentation page it was taken from. A client \
                      uses one with `provider NAME`. See docs/providers.md."
    )]
    Provider(ProviderCommand),

    /// Events for the notify receivers: deliveries pending or failed, and sending one again
    #[command(subcommand)]
    Notify(NotifyCommand),

    /// Find what stands in the way: identity, store, secret values, keys, grants, directories, clocks
    #[command(
        long_about = "Reports, for a project and an environment, what a new user gets wrong: which \
                      identity it found and whether it opens the store, secrets the program reads that \
                      have no value, API keys of identities the program no longer declares, schedules \
                      whose accounts lack grants (and every other error of `svc check`), state or log \
                      directories that cannot be written, schedule runs recorded in the future \
                      (clock skew), and connections that need a person (`needs_reconsent`, \
                      `misconfigured`: a failure, with the command that re-consents; a refresh token \
                      expiring within 7 days: a warning). Exits 0 when all is well, 1 otherwise.",
        after_help = "Example: svc doctor --env prod"
    )]
    Doctor(DoctorArgs),

    /// Run a command with secrets as environment variables
    #[command(
        long_about = "Decrypts the environment's store and runs COMMAND with each secret as an \
                      environment variable of the same name (or only those given with --only), so \
                      another program can use a fresh token without keeping its own copy. The exit \
                      code is the command's.",
        after_help = "Example: svc exec --env prod --only HUBSPOT_ACCESS_TOKEN -- ./sync-contacts.sh"
    )]
    Exec(ExecArgs),
}

/// Where the secret stores are and how to open them.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Environment of the store (dev, prod, ...) [default: `environment` in svc.toml]
    #[arg(long, env = "SVC_ENV", value_name = "ENV", add = ArgValueCandidates::new(complete::environments))]
    pub env: Option<String>,
    /// Directory holding ENV.age and ENV.recipients [default: `secrets_dir` in svc.toml, else `secrets` beside svc.toml, or in the current directory]
    #[arg(long, env = "SVC_SECRETS_DIR", value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Identity file to decrypt with, repeatable [default: $SVC_IDENTITY (paths separated by `:`), then `identity` in svc.toml, then $XDG_CONFIG_HOME/svc/identity.txt]
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// Where state is kept: `files`, or a PostgreSQL URL postgres://user:password@host:port/db?sslmode=require [default: `backend` in svc.toml, else files]
    #[arg(long, env = "SVC_BACKEND", value_name = "URL")]
    pub backend: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Create an age identity file (as age-keygen does) and print its public key
    #[command(
        long_about = "Writes a new X25519 identity to FILE, in the format age-keygen writes, readable \
                      only by you (mode 0600); prints its public key on standard output, ready for \
                      `svc secret init --recipient`. Never overwrites a file."
    )]
    Keygen {
        /// Where to write the identity
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
    },
    /// Create an empty store for an environment
    #[command(
        long_about = "Creates an empty store for the environment, encrypted to the keys given with \
                      --recipient or --recipients-file; with neither, to the public key of the identity \
                      svc reads with (--identity, SVC_IDENTITY, `identity` in svc.toml, then \
                      ~/.config/svc/identity.txt), which it names. Never overwrites a store.",
        after_help = "Example: svc secret init --env dev"
    )]
    Init {
        #[command(flatten)]
        store: StoreArgs,
        /// Public key to encrypt to (age1..., ssh-ed25519 ..., ssh-rsa ...), repeatable [default: the public key of the identity svc reads with]
        #[arg(long = "recipient", short = 'r', value_name = "KEY")]
        recipients: Vec<String>,
        /// File of public keys, one per line, as age's -R
        #[arg(long, short = 'R', value_name = "FILE", conflicts_with = "recipients")]
        recipients_file: Option<PathBuf>,
    },
    /// Set a secret; the value is read from stdin (or --from-file), never from an argument
    #[command(
        long_about = "Sets a secret's value, keeping the previous value for rollback. The value is \
                      read from standard input (hidden when it is a terminal) or from --from-file; one \
                      trailing newline is removed."
    )]
    Set {
        #[arg(add = ArgValueCandidates::new(complete::secrets))]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Read the value from this file instead of stdin
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        /// When the value expires, from now: 30m, 1h, 90d
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// Print a secret's value: the only command that reveals one
    #[command(
        long_about = "Prints a secret's value. With --fresh, a secret declared with `refreshed_by` \
                      is refreshed first (its endpoint runs as the declared service account) when it \
                      expires within its `min_valid`, or has no known expiry; a failed refresh prints \
                      no value and exits 1.",
        after_help = "Example: svc secret get GRAPH_TOKEN --env prod --fresh"
    )]
    Get {
        #[arg(add = ArgValueCandidates::new(complete::secrets))]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Refresh the secret first if its `refreshed_by` says it is due
        #[arg(long)]
        fresh: bool,
        /// The connected account whose value to read, for a `per_account` secret
        #[arg(long, value_name = "ID")]
        connection: Option<String>,
        /// The program that declares the secret, for --fresh and --connection (files or directories) [default: the project's program]
        #[arg(long = "program", value_name = "PATH")]
        program: Vec<PathBuf>,
        /// How long to wait for another run of the refresher, for --fresh: 30s, 5m
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s", requires = "fresh")]
        lock_timeout: std::time::Duration,
    },
    /// Print the public JWK of the private key a secret holds, to register it with a provider
    #[command(
        long_about = "Reads the private key held in secret NAME as `private_key_jwt` and `jwt_bearer` \
                      read it (a PEM, a JWK or a service-account JSON key) and prints its public JWK: \
                      `kty`, `use: \"sig\"`, `alg` and `kid` when known, and the public members (`n` \
                      and `e` for RSA, `crv`, `x` and `y` for P-256, `crv` and `x` for Ed25519), never \
                      a private one. An EC or Ed25519 key has its one `alg`; an RSA key signs RS256, \
                      RS384 and PS256, so it has the JWK's `alg` or --alg. The read is recorded in the \
                      audit log, as `svc secret get`'s is.",
        after_help = "Examples:\n  svc secret public-jwk WORKFORCE_KEY --env prod --kid 2026-11\n  svc secret public-jwk SIGNING_KEY --env prod --alg PS256 --jwks > jwks.json"
    )]
    PublicJwk {
        /// The secret that holds the private key
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        /// The key id, `kid` [default: the JWK's `kid`, or the service account's `private_key_id`]
        #[arg(long, value_name = "KID")]
        kid: Option<String>,
        /// The algorithm, `alg`; it must be one the key signs with [default: the JWK's `alg`, or the one an EC or Ed25519 key has]
        #[arg(long, value_name = "ALG", value_parser = clap::builder::PossibleValuesParser::new(crate::oauth::jwt::Algorithm::NAMES))]
        alg: Option<String>,
        /// Print a JWK set, `{"keys": [JWK]}`, as a `jwks_uri` serves one
        #[arg(long)]
        jwks: bool,
    },
    /// List the secrets of an environment: versions, dates, expiry; never values
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret
    Rm {
        #[arg(add = ArgValueCandidates::new(complete::secrets))]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show a secret's versions and dates, never values
    History {
        #[arg(add = ArgValueCandidates::new(complete::secrets))]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier value current again (as a new version)
    Rollback {
        #[arg(add = ArgValueCandidates::new(complete::secrets))]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Version to restore [default: the one before the current]
        #[arg(long, value_name = "VERSION")]
        to: Option<u64>,
    },
    /// Change who can decrypt a store; the store is re-encrypted
    #[command(subcommand)]
    Recipients(RecipientsCommand),
    /// Write the whole store (values, history, keys) as an age file on standard output
    #[command(
        long_about = "Writes the environment's store, with every secret's history and the API keys, \
                      as an age file encrypted to the environment's recipients: the same JSON document \
                      the files backend keeps in ENV.age, which `age -d` opens. From a database backend \
                      it is a backup, or the way back to files.",
        after_help = "Example: svc secret export --env prod --backend postgres://svc@db/svc > prod.age"
    )]
    Export {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the answers kept in the recovery journal (redacted), or reveal, apply or discard one
    #[command(
        long_about = "A run of an endpoint that updates secrets keeps every answer to a request that sent a secret in an encrypted \
                      recovery journal (STATE_DIR/ENV/journal, or the database) until its updates are \
                      written. A failed run leaves its answers there, and the next run of an endpoint \
                      that updates the same secrets stores them before it sends anything. This command \
                      lists them with every string value masked; --reveal prints one answer's body as \
                      it came (it may hold a token); --apply stores what a run's answers carry, by \
                      running its endpoint of the project's program with them, as the run's identity \
                      and parameters, without sending again what they answered; --discard forgets a \
                      run's answers.",
        after_help = "Examples:\n  svc secret recover --env prod\n  svc secret recover --env prod --apply 0192a3b4c5d6e7f8a9b0c1d2"
    )]
    Recover {
        #[command(flatten)]
        store: StoreArgs,
        /// Where state is kept [default: `state_dir` in svc.toml, else `state` beside it, or in the current directory]
        #[arg(long, env = "SVC_STATE_DIR", value_name = "DIR")]
        state_dir: Option<std::path::PathBuf>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        /// Print the body of one answer as it came: RUN_ID, or RUN_ID.SEQ when the run kept several
        #[arg(long, value_name = "RUN_ID[.SEQ]", conflicts_with_all = ["discard", "json"])]
        reveal: Option<String>,
        /// Forget the answers a run kept
        #[arg(long, value_name = "RUN_ID", conflicts_with = "json")]
        discard: Option<String>,
        /// Store what a run's kept answers carry: its endpoint runs again with them
        #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["discard", "reveal", "json"])]
        apply: Option<String>,
        /// With --apply: run as this user or service account [default: the run's own]
        #[arg(long = "as", value_name = "ACCOUNT", requires = "apply", add = ArgValueCandidates::new(complete::identities))]
        identity: Option<String>,
        /// With --apply: the program whose endpoint runs (files or directories) [default: the project's program]
        #[arg(long = "program", value_name = "PATH", requires = "apply")]
        program: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RecipientsCommand {
    /// Add a public key and re-encrypt the store to it
    Add {
        key: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a public key and re-encrypt the store without it
    Remove {
        key: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the public keys the store is encrypted to
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// The .svc file, or a directory loaded as one program [default: the project's program]
    pub path: Option<PathBuf>,
    /// What to print
    #[arg(long, value_enum, default_value = "ast")]
    pub emit: Emit,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    Ast,
    Openapi,
    Dot,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where to create the project [default: .]
    pub dir: Option<PathBuf>,
    /// Use this age identity file instead of creating one
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Create the identity without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// The environment of the first store
    #[arg(long, default_value = "dev", value_name = "ENV")]
    pub env: String,
    /// Start from a provider profile: its client, secrets, role, refresh endpoint and schedule (svc provider list)
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
}

#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Files or directories to format, or `-` for standard input [default: the project's program, or .]
    pub paths: Vec<PathBuf>,
    /// Change nothing; list the files that are not formatted and exit 1 if any
    #[arg(long)]
    pub check: bool,
}

#[derive(Args, Debug)]
#[command(override_usage = "svc run [OPTIONS] [PATH] <SERVICE.ENDPOINT>")]
pub struct RunArgs {
    /// [PATH] SERVICE.ENDPOINT: the .svc file or directory (default: the project's program), and the endpoint to run
    #[arg(value_name = "ARGS", num_args = 1..=2, required = true, add = ArgValueCompleter::new(complete::path_or_endpoint))]
    pub target: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The user or service account to run as
    #[arg(long = "as", env = "SVC_AS", value_name = "IDENTITY", add = ArgValueCandidates::new(complete::identities))]
    pub identity: Option<String>,
    /// The HTTP method to call the endpoint with [default: GET if allowed, else its first method]
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// A parameter for `param.NAME`, repeatable
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Show the requests that would be sent, secrets masked, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: simulated answers (a JSON file), so the run takes the branches a real answer would
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub mock: Option<PathBuf>,
    /// How to print the result
    #[arg(long, value_enum, default_value = "human")]
    pub output: OutputFormat,
    /// Where endpoint logs are written [default: `log_dir` in svc.toml, else `logs` beside it, or in the current directory]
    #[arg(long, env = "SVC_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Where state is kept: the recovery journal of answers to requests that sent a secret [default: `state_dir` in svc.toml, else `state` beside it, or in the current directory]
    #[arg(long, env = "SVC_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// How long to wait for another run of the same endpoint to finish
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Use the answers the last failed run kept in the recovery journal instead of sending again
    #[arg(long, conflicts_with = "dry_run")]
    pub replay: bool,
    /// Run even when a connection the endpoint refreshes needs a person (`svc connection show`)
    #[arg(long)]
    pub force: bool,
    /// The connected account a per-account endpoint runs for (its connection id)
    #[arg(long, value_name = "ID")]
    pub connection: Option<String>,
    /// Rotate the endpoint log before it grows past this size: 16MiB, 512KiB, 0 for never
    #[arg(long, env = "SVC_LOG_MAX_BYTES", default_value = "16MiB", value_name = "SIZE", value_parser = parse_size)]
    pub log_max_bytes: u64,
}

#[derive(Args, Debug)]
#[command(override_usage = "svc authorize [OPTIONS] [PATH] <CLIENT> --as <IDENTITY>")]
pub struct AuthorizeArgs {
    /// [PATH] CLIENT: the .svc file or directory (default: the project's program), and the oauth_client to authorize
    #[arg(value_name = "ARGS", num_args = 1..=2, required = true, add = ArgValueCompleter::new(complete::path_or_client))]
    pub target: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The user or service account that authorizes (it must hold `update_secret` on what the client stores)
    #[arg(long = "as", env = "SVC_AS", value_name = "IDENTITY", add = ArgValueCandidates::new(complete::identities))]
    pub identity: Option<String>,
    /// Use the device authorization grant (RFC 8628): a code to enter on another device, no redirect
    #[arg(long)]
    pub device: bool,
    /// The connected account to authorize, for a `per_account` client: the id your app knows it by (a new one is created, an existing one re-consented)
    #[arg(long, value_name = "ID")]
    pub connection: Option<String>,
    /// A tag of the connected account, KEY=VALUE (repeatable; replaces its tags)
    #[arg(long = "tag", value_name = "KEY=VALUE", requires = "connection")]
    pub tags: Vec<String>,
    /// Print the authorization URL without opening a browser
    #[arg(long)]
    pub no_browser: bool,
    /// Where the redirect listener listens: 127.0.0.1:PORT or [::1]:PORT [default: 127.0.0.1, any free port]
    #[arg(long, value_name = "ADDRESS", conflicts_with = "device")]
    pub listen: Option<std::net::SocketAddr>,
    /// How long to wait for the person to finish
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// How to print the events: human, or json (one object a line: authorize_url, device_code, stored, error)
    #[arg(long, value_enum, default_value = "human")]
    pub output: OutputFormat,
    /// Where the recovery journal is kept [default: `state_dir` in svc.toml, else `state` beside it, or in the current directory]
    #[arg(long, env = "SVC_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,
    /// How long to wait for a run that updates the same secrets to finish
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// .svc files or directories, loaded as one program [default: the project's program]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on [default: `listen` in svc.toml, else 127.0.0.1:8700]
    #[arg(long, env = "SVC_LISTEN", value_name = "ADDRESS")]
    pub listen: Option<std::net::SocketAddr>,
    /// How to write the log lines on standard error: human, or json (one object a line) [default: `log_format` in svc.toml, else human]
    #[arg(long, env = "SVC_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// PEM certificate chain: serve HTTPS (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where endpoint, schedule and audit logs are written [default: `log_dir` in svc.toml, else `logs` beside it, or in the current directory]
    #[arg(long, env = "SVC_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Where the schedules' state and the recovery journal are kept [default: `state_dir` in svc.toml, else `state` beside it, or in the current directory]
    #[arg(long, env = "SVC_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Serve HTTP only; do not run the schedules
    #[arg(long)]
    pub no_schedules: bool,
    /// How long running endpoint runs may take to finish at shutdown
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub shutdown_timeout: std::time::Duration,
    /// How long a run waits for another run of the same endpoint
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// How long a client has to send a complete request head (from connecting, or from the first byte of a later request)
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub header_timeout: std::time::Duration,
    /// How long a kept-alive connection may wait between requests
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: std::time::Duration,
    /// How long reading a request body may take, once the key is checked (408 after)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub body_timeout: std::time::Duration,
    /// The largest request body accepted (413 above)
    #[arg(long, default_value = "1MiB", value_name = "SIZE", value_parser = parse_size)]
    pub max_body_bytes: u64,
    /// Open connections at most; at the cap, the oldest idle one is closed for a new one
    #[arg(long, default_value = "4096", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Asynchronous runs kept at once; when all are still running, another is refused with 503
    #[arg(long, default_value = "1000", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_jobs: u64,
    /// Rotate a log (endpoint, schedule, audit) before it grows past this size: 16MiB, 512KiB, 0 for never
    #[arg(long, env = "SVC_LOG_MAX_BYTES", default_value = "16MiB", value_name = "SIZE", value_parser = parse_size)]
    pub log_max_bytes: u64,
    /// The URL customers' browsers reach this server at (https, or http to loopback): turns on hosted consent, `POST /api/connect/sessions` and `/connect/...`
    #[arg(long, env = "SVC_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an API key for a user or service account; prints it once
    Create {
        /// The user or service account the key authenticates
        #[arg(long = "as", value_name = "IDENTITY", add = ArgValueCandidates::new(complete::identities))]
        identity: String,
        #[command(flatten)]
        store: StoreArgs,
        /// The program whose identities the keys are for [default: the project's program]
        #[arg(long = "program", value_name = "PATH")]
        program: Vec<PathBuf>,
        /// A name to recognise the key by
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The key stops working after this long: 30d, 12h
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires: Option<std::time::Duration>,
        /// Limit the key to connected accounts with this tag, KEY=VALUE (repeatable: all must match); others answer 404
        #[arg(long = "connection-tag", value_name = "KEY=VALUE")]
        connection_tags: Vec<String>,
        /// Limit the key to connected accounts whose id starts with this; others answer 404
        #[arg(long, value_name = "PREFIX")]
        connection_prefix: Option<String>,
    },
    /// List the API keys: id, identity, name, dates; never the keys
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// The program whose identities the keys are for, to mark keys of identities it no longer declares [default: the project's program]
        #[arg(long = "program", value_name = "PATH")]
        program: Vec<PathBuf>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key at once
    Revoke {
        /// The key's id (the 12 hex digits after `svc_`)
        id: String,
        #[command(flatten)]
        store: StoreArgs,
        /// The program whose identities the keys are for [default: the project's program]
        #[arg(long = "program", value_name = "PATH")]
        program: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProviderCommand {
    /// Every profile: name, provider, rotation, PKCE, parameters
    #[command(after_help = "Example: svc provider list --json | jq -r '.[].name'")]
    List {
        /// Print JSON (an array of objects, each with `name`) instead of a table
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print docs/providers.md, the catalog for people
        #[arg(long)]
        markdown: bool,
    },
    /// One profile: its endpoints, client authentication, rotation, expiries, scopes and sources
    #[command(after_help = "Example: svc provider show microsoft")]
    Show {
        /// The profile's name, as `provider NAME` writes it
        name: String,
        /// Print the profile as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Each schedule's next fire times and last outcome
    List {
        /// .svc files or directories, loaded as one program [default: the project's program]
        paths: Vec<PathBuf>,
        /// Environment whose schedule state to read [default: `environment` in svc.toml]
        #[arg(long, env = "SVC_ENV", value_name = "ENV", add = ArgValueCandidates::new(complete::environments))]
        env: Option<String>,
        /// Where the schedules' state is kept [default: as `svc serve`]
        #[arg(long, env = "SVC_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Directory of the secret stores, for `before_expiry` schedules [default: as `svc secret`]
        #[arg(long, env = "SVC_SECRETS_DIR", value_name = "DIR")]
        secrets_dir: Option<PathBuf>,
        /// Identity to read expiries with, for `before_expiry` schedules [default: as `svc secret`]
        #[arg(long = "identity", short = 'i', value_name = "FILE")]
        identities: Vec<PathBuf>,
        /// Where state is kept: `files`, or a PostgreSQL URL [default: as `svc secret`]
        #[arg(long, env = "SVC_BACKEND", value_name = "URL")]
        backend: Option<String>,
        /// How many fire times to show
        #[arg(short = 'n', long, default_value = "3", value_name = "N")]
        count: usize,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// Where a connection's state is read from.
#[derive(Args, Debug, Clone)]
pub struct ConnectionPlace {
    /// The .svc files or directories of the program, repeatable [default: the project's program]
    #[arg(long = "program", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where the connections' state is kept (files backend) [default: as `svc serve`]
    #[arg(long, env = "SVC_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConnectionCommand {
    /// Every connection of the environment: state, since when, failures in a row; the connected accounts of `per_account` clients too
    #[command(
        after_help = "Example: svc connection list --env prod --client hubspot_app --tag plan=pro"
    )]
    List {
        /// Only the connections of this oauth_client
        #[arg(long, value_name = "CLIENT", add = ArgValueCandidates::new(complete::clients))]
        client: Option<String>,
        /// Only connections in this state: healthy, degraded, needs_reconsent, misconfigured, revoked
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
        /// Only connected accounts with this tag, KEY=VALUE (repeatable: all must match)
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Only connected accounts whose id starts with this
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        #[command(flatten)]
        place: ConnectionPlace,
    },
    /// One connection: state, failures, last error, both tokens' expiries, the next scheduled refresh, and the command to re-consent
    #[command(after_help = "Example: svc connection show hubspot_app --env prod")]
    Show {
        /// The oauth_client
        #[arg(value_name = "CLIENT", add = ArgValueCandidates::new(complete::clients))]
        client: String,
        /// The connection of the client [default: the client's one connection, `default`]
        #[arg(long, value_name = "ID", default_value = "default")]
        connection: String,
        #[command(flatten)]
        place: ConnectionPlace,
    },
    /// Bring in connected accounts from elsewhere: one JSON object a line, each with its id, tags and tokens
    #[command(
        long_about = "Reads FILE (`-`: standard input), one JSON object a line: {\"connection_id\": \"acme-42\", \
                      \"tags\": {\"plan\": \"pro\"}, \"refresh_token\": \"...\", \"access_token\": \"...\", \
                      \"expires_in\": 3600} (or \"access_token_expires_at\"). Each token goes to the secret the \
                      client `stores` it in; the accounts start healthy, and send no event. An id that exists \
                      is left as it is. A line that is not an account stops the import before anything is \
                      written; token values are never printed.",
        after_help = "Example: svc connection import hubspot_app accounts.jsonl --env prod"
    )]
    Import {
        /// The per_account oauth_client
        #[arg(value_name = "CLIENT", add = ArgValueCandidates::new(complete::clients))]
        client: String,
        /// The file of accounts, one JSON object a line (`-`: standard input)
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        place: ConnectionPlace,
    },
    /// Replace a connected account's tags
    #[command(
        after_help = "Example: svc connection tag hubspot_app --connection acme-42 plan=pro team=blue"
    )]
    Tag {
        /// The oauth_client
        #[arg(value_name = "CLIENT", add = ArgValueCandidates::new(complete::clients))]
        client: String,
        /// The connected account
        #[arg(long, value_name = "ID")]
        connection: String,
        /// Its tags, KEY=VALUE (none: no tags)
        #[arg(value_name = "KEY=VALUE")]
        tags: Vec<String>,
        #[command(flatten)]
        place: ConnectionPlace,
    },
    /// Revoke a connection's tokens at the provider (RFC 7009), clear them from the store, and mark it revoked
    #[command(
        long_about = "Revokes the connection's refresh token, then its access token, at the client's \
                      revocation endpoint (`revocation_url`, or the issuer's `revocation_endpoint`), \
                      authenticated as the client is at its token endpoint; then removes every secret \
                      the client `stores` in one update and marks the connection `revoked`: runs that \
                      refresh it exit 4 until `svc authorize`. A client without a revocation endpoint \
                      is cleared here only, and the output says so. When the provider refuses the \
                      refresh token (or does not answer), nothing is cleared: run again, or \
                      `--local-only`. Token values are never printed.",
        after_help = "Example: svc connection revoke hubspot_app --env prod"
    )]
    Revoke(RevokeArgs),
    /// Revoke a connection's tokens at the provider as `revoke` does, clear them, and forget the connection (event `connection.deleted`)
    #[command(
        long_about = "Does what `svc connection revoke` does (the tokens revoked at the provider, \
                      then cleared from the store in one update; nothing cleared when the provider \
                      refuses the refresh token), then forgets the connection's state and sends \
                      `connection.deleted` to the `notify` receivers that list it. Token values are \
                      never printed.",
        after_help = "Example: svc connection delete hubspot_app --env prod"
    )]
    Delete(RevokeArgs),
}

/// Which connection `svc connection revoke` and `delete` end, and how.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The oauth_client
    #[arg(value_name = "CLIENT", add = ArgValueCandidates::new(complete::clients))]
    pub client: String,
    /// The connection of the client [default: the client's one connection, `default`]
    #[arg(long, value_name = "ID", default_value = "default")]
    pub connection: String,
    /// Clear the tokens without calling the provider: they stay valid there until they expire or are revoked in its console
    #[arg(long)]
    pub local_only: bool,
    /// How long to wait for a run that refreshes the connection to finish
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    #[command(flatten)]
    pub place: ConnectionPlace,
}

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Deliveries not yet made (pending) and given up (failed), oldest first
    #[command(after_help = "Example: svc notify list --env prod")]
    List {
        /// Delivered ones too (kept for 7 days)
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        place: ConnectionPlace,
    },
    /// Send a delivery again now, with the same webhook-id, and record what came of it
    #[command(after_help = "Example: svc notify retry msg_4f1c... --env prod")]
    Retry {
        /// The delivery's id, as `svc notify list` shows it
        #[arg(value_name = "ID")]
        id: String,
        #[command(flatten)]
        place: ConnectionPlace,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackendCommand {
    /// The backend's schema version, environments and their secret counts
    Status {
        /// The backend: a PostgreSQL URL [default: `backend` in svc.toml]
        #[arg(long, env = "SVC_BACKEND", value_name = "URL")]
        backend: Option<String>,
    },
    /// Copy an environment from files into a database: store with history, recipients, keys, schedule state, logs
    #[command(
        long_about = "Copies one environment from the files backend (the store with every history, its \
                      recipients, the API keys, the schedule state, the endpoint, schedule and audit logs) \
                      into a PostgreSQL database. Running it again copies only what changed; it refuses \
                      to overwrite a secret the database holds in a newer version unless --force.",
        after_help = "Example: svc backend migrate --env prod --to postgres://svc@db.internal/svc"
    )]
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
        /// The database to copy into
        #[arg(long, value_name = "URL")]
        to: String,
        /// Overwrite what the database holds in a newer version
        #[arg(long)]
        force: bool,
        /// Where the logs are [default: as `svc run`]
        #[arg(long, env = "SVC_LOG_DIR", value_name = "DIR")]
        log_dir: Option<PathBuf>,
        /// Where the schedule state is [default: as `svc serve`]
        #[arg(long, env = "SVC_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFormat {
    Human,
    Json,
    Github,
    Sarif,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The endpoint whose log to show, as SERVICE.ENDPOINT
    #[arg(
        value_name = "SERVICE.ENDPOINT",
        required_unless_present = "schedule",
        conflicts_with = "schedule",
        add = ArgValueCandidates::new(complete::endpoints)
    )]
    pub endpoint: Option<String>,
    /// Show the runs of this schedule instead
    #[arg(long, value_name = "NAME")]
    pub schedule: Option<String>,
    /// Environment of the runs [default: `environment` in svc.toml]
    #[arg(long, env = "SVC_ENV", value_name = "ENV", add = ArgValueCandidates::new(complete::environments))]
    pub env: Option<String>,
    /// Show the last N runs
    #[arg(short = 'n', long = "lines", default_value = "20", value_name = "N")]
    pub count: usize,
    /// Print JSON lines, as stored, instead of a summary
    #[arg(long)]
    pub json: bool,
    /// Where endpoint logs are written [default: as `svc run`]
    #[arg(long, env = "SVC_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Where state is kept: `files`, or a PostgreSQL URL [default: as `svc secret`]
    #[arg(long, env = "SVC_BACKEND", value_name = "URL")]
    pub backend: Option<String>,
}

/// A size in bytes: `4096`, `512KiB`, `16MiB`, `1GiB` (`K`, `M`, `G` and
/// `KB`, `MB`, `GB` mean the same powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| {
        format!("`{text}` is not a size; write bytes or a size such as 512KiB or 16MiB")
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{unit}` is not a unit of size; use KiB, MiB or GiB"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| "write a parameter as NAME=VALUE".to_string())?;
    if name.is_empty() {
        return Err("the parameter name is empty".into());
    }
    Ok((name.to_string(), value.to_string()))
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only these secrets, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "NAME,...", add = ArgValueCandidates::new(complete::secrets))]
    pub only: Vec<String>,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::syntax::duration::parse(text)
        .map_err(|problem| format!("{problem}; {}", crate::syntax::duration::HELP))
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Files or directories to check [default: the project's program]
    pub paths: Vec<PathBuf>,
    /// Exit with 1 when there are warnings, not only errors
    #[arg(long)]
    pub deny_warnings: bool,
    /// How to print the diagnostics: human (miette reports), json, github (workflow annotations), sarif (2.1.0)
    #[arg(long, value_enum, default_value = "human")]
    pub format: CheckFormat,
    /// Also report secrets the program reads that have no value in this environment's store
    #[arg(long, value_name = "ENV", add = ArgValueCandidates::new(complete::environments))]
    pub env: Option<String>,
    /// Directory holding the secret stores (with --env) [default: as `svc secret`]
    #[arg(long, env = "SVC_SECRETS_DIR", value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Identity file to open the store with (with --env), repeatable [default: as `svc secret`]
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// Where state is kept (with --env): `files`, or a PostgreSQL URL [default: as `svc secret`]
    #[arg(long, env = "SVC_BACKEND", value_name = "URL")]
    pub backend: Option<String>,
    /// Apply the safe fixes to the files, in place, then report what is left
    #[arg(long)]
    pub fix: bool,
    /// With --fix: apply the fixes that need review too (a misspelt name's nearest match, a missing grant)
    #[arg(long, requires = "fix")]
    pub unsafe_fixes: bool,
    /// With --fix: print the changes as a unified diff instead of making them; exit 1 when there are some
    #[arg(long, requires = "fix")]
    pub diff: bool,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// The .svc files or directories of the program [default: the project's program]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where logs are written [default: as `svc serve`]
    #[arg(long, env = "SVC_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Where state is kept [default: as `svc serve`]
    #[arg(long, env = "SVC_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// The command line's definition: what `svc --help`, the completions and
/// the manual page are made from, and what the docs' command lines are
/// parsed with (tests/docs_commands.rs).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
