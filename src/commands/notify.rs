//! `svc notify list` and `svc notify retry`: the outbox of an environment,
//! and sending one delivery again by hand.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};

use super::context::Context;
use super::{block_on, store_error, usage_error};
use crate::backend::outbox::{Attempt, Delivery, Retry, Status};
use crate::commands::cli::{ConnectionPlace, NotifyCommand};
use crate::exit;
use crate::output::outln;

pub fn run(command: NotifyCommand) -> ExitCode {
    let (place_args, retry, all) = match command {
        NotifyCommand::List { all, place } => (place, None, all),
        NotifyCommand::Retry { id, place } => (place, Some(id), true),
    };
    let Some(id) = retry else {
        return list(&place_args, all);
    };
    // As `svc connection revoke` opens them: the program (for the
    // receiver's URL and secret) and the environment.
    let (script, place) =
        match super::connection::open(&place_args, &crate::backend::Options::default()) {
            Ok(opened) => opened,
            Err(code) => return code,
        };
    let keys = match place.identities() {
        Ok(keys) => Arc::new(keys),
        Err(error) => return store_error(&error),
    };
    let sender = crate::notify::Sender::new(Arc::new(script), place.backend.clone(), Some(keys));
    let outcome = block_on(async {
        let delivery = match place
            .backend
            .outbox
            .retry(&id, Utc::now(), crate::notify::LEASE)
            .await?
        {
            Retry::Claimed(delivery) => *delivery,
            Retry::Busy => return Ok(Err(true)),
            Retry::Unknown => return Ok(Err(false)),
        };
        let attempt = sender.send(&delivery).await;
        sender.settle(&delivery, attempt.clone()).await;
        Ok(Ok((delivery, attempt)))
    });
    match outcome {
        Err(error) => store_error(&error),
        Ok(Err(false)) => usage_error(
            "svc::notify::unknown_delivery",
            &format!("no delivery `{id}` in `{}`", place.env),
            Some("`svc notify list --all` shows the deliveries kept"),
        ),
        Ok(Err(true)) => usage_error(
            "svc::notify::being_sent",
            &format!("`svc serve` is sending `{id}` right now"),
            Some("`svc notify list` shows what came of it in a minute at most"),
        ),
        Ok(Ok((delivery, Attempt::Delivered))) => {
            outln!(
                "delivered {} ({}) to notify `{}`",
                delivery.event,
                delivery.id,
                delivery.notify
            );
            exit::code(exit::SUCCESS)
        }
        Ok(Ok((delivery, Attempt::Failed(error) | Attempt::Undeliverable(error)))) => {
            eprint!(
                "{}",
                crate::report::render_error(
                    "svc::notify::not_delivered",
                    &format!(
                        "{} ({}) was not delivered to notify `{}`: {error}",
                        delivery.event, delivery.id, delivery.notify
                    ),
                    Some(
                        "it stays pending: `svc serve` tries it again, with backoff, for 24 hours"
                    ),
                    crate::report::Style::for_stderr(),
                )
            );
            exit::code(exit::FAILURE)
        }
    }
}

/// `svc notify list`: needs the environment, not the program.
fn list(args: &ConnectionPlace, all: bool) -> ExitCode {
    let context = match Context::find(&args.paths) {
        Ok(context) => context,
        Err(code) => return code,
    };
    let place = match context.place_with(
        &args.store,
        None,
        args.state_dir.as_deref(),
        &crate::backend::Options::default(),
    ) {
        Ok(place) => place,
        Err(code) => return code,
    };
    let deliveries = match block_on(place.backend.outbox.list()) {
        Ok(deliveries) => deliveries,
        Err(error) => return store_error(&error),
    };
    let shown: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| all || d.status != Status::Delivered)
        .collect();
    if args.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "deliveries": shown }));
        outln!("{}", text.expect("deliveries serialize"));
    } else if shown.is_empty() {
        outln!(
            "no deliveries {}in `{}`",
            if all { "" } else { "pending or failed " },
            place.env
        );
    } else {
        for delivery in shown {
            print(delivery);
        }
    }
    exit::code(exit::SUCCESS)
}

fn print(delivery: &Delivery) {
    let time = |at: chrono::DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
    outln!(
        "{}  {}  {}/{}  -> notify `{}`",
        delivery.id,
        delivery.event,
        delivery.client,
        delivery.connection_id,
        delivery.notify
    );
    let when = match delivery.status {
        Status::Pending => format!("next attempt {}", time(delivery.next_attempt_at)),
        Status::Delivered => delivery
            .delivered_at
            .map_or_else(String::new, |at| format!("at {}", time(at))),
        Status::Failed => "given up; `svc notify retry ID` sends it again".to_string(),
    };
    outln!(
        "  {}, {} attempt{}, {when}",
        delivery.status.as_str(),
        delivery.attempts,
        if delivery.attempts == 1 { "" } else { "s" }
    );
    if let Some(error) = &delivery.last_error {
        outln!("  last error: {error}");
    }
}
