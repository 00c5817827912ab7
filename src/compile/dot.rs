//! A Graphviz DOT graph of a program: services with their endpoints and
//! actions, the schedules that run endpoints, the OAuth clients with the
//! secrets they store, the actions that authenticate as them, and the
//! secrets each action reads and writes.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::syntax::ast::*;

/// The endpoints a hook runs, as red (failure) or green (recovery) dashed edges.
fn hook_edges(
    edges: &mut String,
    from: &str,
    on_failure: Option<&Hook>,
    on_recovery: Option<&Hook>,
) {
    for (label, color, hook) in [
        ("on_failure runs", "#b91c1c", on_failure),
        ("on_recovery runs", "#15803d", on_recovery),
    ] {
        let Some(hook) = hook else { continue };
        hook.body.walk(&mut |statement| {
            if let StatementKind::RunService { endpoint, .. } = &statement.kind {
                let _ = writeln!(
                    edges,
                    "  {from} -> {} [label=\"{label}\", style=dashed, color=\"{color}\", fontcolor=\"{color}\"];",
                    quote(&endpoint.display())
                );
            }
        });
    }
}

pub fn dot(program: &Program, analysis: &crate::check::Analysis) -> String {
    let mut out = String::new();
    out.push_str("digraph svc {\n");
    out.push_str("  rankdir=LR;\n");
    out.push_str("  graph [fontname=\"Helvetica\", fontsize=12];\n");
    out.push_str("  node [fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for service in &program.services {
        let _ = writeln!(
            out,
            "  subgraph {} {{",
            quote(&format!("cluster_{}", service.name.text))
        );
        let _ = writeln!(
            out,
            "    label={}; style=rounded; color=gray60;",
            quote(&format!("service {}", service.name.text))
        );
        for endpoint in &service.endpoints {
            let methods: Vec<&str> = endpoint.methods.iter().map(|m| m.as_str()).collect();
            let _ = writeln!(
                out,
                "    {} [label={}, shape=box, style=\"rounded,filled\", fillcolor=\"#dbeafe\"];",
                quote(&endpoint_id(&service.name.text, &endpoint.name.text)),
                quote(&format!(
                    "endpoint {}\n{}",
                    endpoint.name.text,
                    methods.join(" ")
                ))
            );
        }
        for action in &service.actions {
            let _ = writeln!(
                out,
                "    {} [label={}, shape=ellipse];",
                quote(&action_id(&service.name.text, &action.name.text)),
                quote(&format!("action {}", action.name.text))
            );
        }
        out.push_str("  }\n");
    }
    let mut secrets: BTreeSet<&str> = BTreeSet::new();
    let mut edges = String::new();
    for service in &program.services {
        for endpoint in &service.endpoints {
            let from = quote(&endpoint_id(&service.name.text, &endpoint.name.text));
            if let Some(process) = &endpoint.process {
                let _ = writeln!(
                    edges,
                    "  {from} -> {} [label=\"process\"];",
                    quote(&action_id(&service.name.text, &process.text))
                );
            }
            hook_edges(
                &mut edges,
                &from,
                endpoint.on_failure.as_ref(),
                endpoint.on_recovery.as_ref(),
            );
        }
        for action in &service.actions {
            let from = quote(&action_id(&service.name.text, &action.name.text));
            // What the checker found the action does.
            let Some(effects) = analysis
                .actions
                .get(&format!("{}.{}", service.name.text, action.name.text))
            else {
                continue;
            };
            let (writes, reads) = (&effects.writes, &effects.reads);
            let (calls, clients) = (&effects.runs, &effects.clients);
            for secret in writes {
                secrets.insert(secret);
                let _ = writeln!(
                    edges,
                    "  {from} -> {} [label=\"updates\", color=\"#b45309\", fontcolor=\"#b45309\"];",
                    quote(&secret_id(secret))
                );
            }
            for secret in reads.difference(writes) {
                secrets.insert(secret);
                let _ = writeln!(
                    edges,
                    "  {} -> {from} [label=\"reads\", style=dashed, color=gray50];",
                    quote(&secret_id(secret))
                );
            }
            for client in clients {
                let _ = writeln!(
                    edges,
                    "  {from} -> {} [label=\"authenticates as\", style=dotted];",
                    quote(&client_id(client))
                );
            }
            for (endpoint, account) in calls {
                let label = match account {
                    Some(account) => format!("run_service as {account}"),
                    None => "run_service".to_string(),
                };
                let _ = writeln!(
                    edges,
                    "  {from} -> {} [label={}];",
                    quote(endpoint),
                    quote(&label)
                );
            }
        }
    }
    for schedule in &program.schedules {
        let timing = match (&schedule.every, &schedule.cron) {
            (Some(every), _) => format!("every {}", every.text),
            (None, Some(cron)) => format!("cron {}", cron.value),
            (None, None) => String::new(),
        };
        let account = schedule
            .service_account
            .as_ref()
            .map_or(String::new(), |a| format!("\nas {}", a.text));
        let id = quote(&format!("schedule:{}", schedule.name.text));
        let _ = writeln!(
            out,
            "  {id} [label={}, shape=note, style=filled, fillcolor=\"#ecfccb\"];",
            quote(&format!(
                "schedule {}\n{timing}{account}",
                schedule.name.text
            ))
        );
        if let Some(endpoint) = &schedule.endpoint {
            let _ = writeln!(
                edges,
                "  {id} -> {} [label=\"runs\"];",
                quote(&endpoint.display())
            );
        }
        hook_edges(
            &mut edges,
            &id,
            schedule.on_failure.as_ref(),
            schedule.on_recovery.as_ref(),
        );
    }
    for client in &program.oauth_clients {
        let id = quote(&client_id(&client.name.text));
        let method = client
            .client_auth
            .as_ref()
            .map_or(String::new(), |a| format!("\n{}", a.method()));
        let _ = writeln!(
            out,
            "  {id} [label={}, shape=component, style=filled, fillcolor=\"#ede9fe\"];",
            quote(&format!("oauth_client {}{method}", client.name.text))
        );
        let mut reads = BTreeSet::new();
        for (_, expr) in client.expressions() {
            expr.walk(&mut |e| {
                if let ExprKind::Secret { name } = &e.kind {
                    reads.insert(name.as_str());
                }
            });
        }
        for secret in &reads {
            secrets.insert(secret);
            let _ = writeln!(
                edges,
                "  {} -> {id} [label=\"reads\", style=dashed, color=gray50];",
                quote(&secret_id(secret))
            );
        }
        for store in client.stores.iter().flat_map(|s| &s.entries) {
            secrets.insert(store.secret.as_str());
            let _ = writeln!(
                edges,
                "  {id} -> {} [label={}, color=\"#7c3aed\", fontcolor=\"#7c3aed\"];",
                quote(&secret_id(&store.secret.text)),
                quote(&format!("stores {}", store.field_name.text))
            );
        }
    }
    for secret in &program.secrets {
        let Some(refresher) = &secret.refreshed_by else {
            continue;
        };
        secrets.insert(secret.name.as_str());
        let min_valid = refresher
            .min_valid
            .as_ref()
            .map_or(String::new(), |m| format!(", min_valid {}", m.text));
        let _ = writeln!(
            edges,
            "  {} -> {} [label={}, style=dotted, color=\"#b45309\", fontcolor=\"#b45309\"];",
            quote(&secret_id(&secret.name.text)),
            quote(&refresher.endpoint.display()),
            quote(&format!(
                "refreshed by\nas {}{min_valid}",
                refresher.service_account.text
            ))
        );
    }
    for secret in &secrets {
        let locked = program
            .secrets
            .iter()
            .any(|s| s.name.text == *secret && s.locked.is_some());
        let label = if locked {
            format!("{secret}\n(locked)")
        } else {
            secret.to_string()
        };
        let _ = writeln!(
            out,
            "  {} [label={}, shape=cylinder, style=filled, fillcolor=\"#fef3c7\"];",
            quote(&secret_id(secret)),
            quote(&label)
        );
    }
    out.push_str(&edges);
    out.push_str("}\n");
    out
}

fn endpoint_id(service: &str, endpoint: &str) -> String {
    format!("{service}.{endpoint}")
}

fn action_id(service: &str, action: &str) -> String {
    format!("{service}/{action}")
}

fn client_id(client: &str) -> String {
    format!("oauth_client:{client}")
}

fn secret_id(secret: &str) -> String {
    format!("secret:{secret}")
}

/// A DOT string: quotes and backslashes escaped, newlines as `\n`.
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
