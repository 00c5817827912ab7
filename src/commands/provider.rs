//! `svc provider list` and `svc provider show NAME`: the catalog of
//! provider profiles, for people and for scripts.

use std::process::ExitCode;

use serde_json::json;

use super::usage_error;
use crate::commands::cli::ProviderCommand;
use crate::exit;
use crate::output::outln;
use crate::providers::{self, Pkce, docs};

pub fn run(command: ProviderCommand) -> ExitCode {
    match command {
        ProviderCommand::List { json, markdown } => list(json, markdown),
        ProviderCommand::Show { name, json } => show(&name, json),
    }
}

fn list(json: bool, markdown: bool) -> ExitCode {
    let catalog = providers::catalog();
    if markdown {
        crate::output::out!("{}", docs::markdown(catalog));
        return exit::code(exit::SUCCESS);
    }
    if json {
        let rows: Vec<serde_json::Value> = catalog
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "title": p.title,
                    "docs": p.docs,
                    "rotation": p.refresh.as_ref().map(|r| r.rotation.name()),
                    "pkce": p.authorization.as_ref().and_then(|a| a.pkce).map(Pkce::name),
                    "parameters": p.parameters.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
                    "code_flow": p.authorization.is_some(),
                    "client_credentials": p.client_credentials.is_some(),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("a listing serializes")
        );
        return exit::code(exit::SUCCESS);
    }
    let width = catalog
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(4)
        .max(7);
    let titles = catalog
        .iter()
        .map(|p| p.title.len())
        .max()
        .unwrap_or(8)
        .max(8);
    outln!(
        "{:width$}  {:titles$}  {:9}  PARAMETERS",
        "PROFILE",
        "PROVIDER",
        "ROTATION"
    );
    for p in catalog {
        let params: Vec<&str> = p.parameters.iter().map(|p| p.name.as_str()).collect();
        outln!(
            "{:width$}  {:titles$}  {:9}  {}",
            p.name,
            p.title,
            p.refresh.as_ref().map_or("-", |r| r.rotation.name()),
            params.join(", ")
        );
    }
    exit::code(exit::SUCCESS)
}

/// The profile called `name`, or the usage error that names the closest
/// one (`svc provider show`, `svc init --provider`).
pub fn profile(name: &str) -> Result<&'static providers::Profile, ExitCode> {
    providers::get(name).ok_or_else(|| {
        let help = match crate::suggest::closest(name, providers::names()) {
            Some(close) => format!("did you mean `{close}`? `svc provider list` shows them all"),
            None => "`svc provider list` shows the profiles".to_string(),
        };
        usage_error(
            "svc::provider::unknown",
            &format!("no provider profile is called `{name}`"),
            Some(&help),
        )
    })
}

fn show(name: &str, json: bool) -> ExitCode {
    let profile = match profile(name) {
        Ok(profile) => profile,
        Err(refused) => return refused,
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(profile).expect("a profile serializes")
        );
        return exit::code(exit::SUCCESS);
    }
    outln!("{} ({})", profile.title, profile.name);
    outln!("  documentation: {}", profile.docs);
    let facts = docs::facts(profile);
    let width = facts.iter().map(|f| f.what.len()).max().unwrap_or(0);
    for fact in &facts {
        outln!("  {:width$}  {}", fact.what, fact.value.replace('`', ""));
    }
    for note in &profile.notes {
        outln!("  note: {note}");
    }
    for finding in &profile.not_expressible {
        outln!("  not expressible yet: {finding}");
    }
    outln!("  sources:");
    let mut sources: Vec<&str> = facts.iter().map(|f| f.source.as_str()).collect();
    sources.dedup();
    let mut seen = std::collections::BTreeSet::new();
    for source in sources {
        if seen.insert(source) {
            outln!("    {source}");
        }
    }
    exit::code(exit::SUCCESS)
}
