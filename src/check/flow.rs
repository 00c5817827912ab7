//! Flow analysis of an action: which values are known to be present at each
//! `update_secret`, and which statements can never run.
//!
//! A value is known present after a check such as `has_value(x)` or
//! `x != null` on every path that reaches the update, or after an early
//! `throw` on the path where it was absent.

use std::collections::BTreeSet;

use super::fixes::Layout;
use super::functions::Function;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use crate::syntax::ast::*;

/// Something that may be null at run time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Nullable {
    Var(String),
    Secret(String),
    Param(String),
}

impl Nullable {
    fn of(expr: &Expr) -> Option<Nullable> {
        match &expr.kind {
            ExprKind::Variable { name } => Some(Nullable::Var(name.text.clone())),
            ExprKind::Secret { name } => Some(Nullable::Secret(name.text.clone())),
            ExprKind::Param { name } => Some(Nullable::Param(name.text.clone())),
            _ => None,
        }
    }

    fn display(&self) -> String {
        match self {
            Nullable::Var(name) => name.clone(),
            Nullable::Secret(name) => format!("secret.{name}"),
            Nullable::Param(name) => format!("param.{name}"),
        }
    }
}

type Known = BTreeSet<Nullable>;

pub fn check_action(action: &ActionDecl, layout: Layout<'_>, diagnostics: &mut Vec<Diagnostic>) {
    let mut flow = Flow {
        diagnostics,
        layout,
    };
    let mut known = Known::new();
    flow.block(&action.body, &mut known);
}

struct Flow<'d, 't> {
    diagnostics: &'d mut Vec<Diagnostic>,
    layout: Layout<'t>,
}

impl Flow<'_, '_> {
    /// Walks a block, updating `known`. Returns true when every path
    /// through the block ends in a `throw`.
    fn block(&mut self, block: &Block, known: &mut Known) -> bool {
        for (i, statement) in block.statements.iter().enumerate() {
            if self.statement(statement, known) {
                if let Some(next) = block.statements.get(i + 1) {
                    let last = block.statements.last().map_or(next.span, |s| s.span);
                    let unreachable = next.span.to(last);
                    let fix = self
                        .layout
                        .remove_statements(unreachable, "Remove the code that never runs".into());
                    self.diagnostics.push(
                        Diagnostic::new(Code::UnreachableCode, "this code never runs")
                            .label(unreachable, "unreachable")
                            .label(statement.span, "every path through this ends the run")
                            .help("remove it, or move it before the statement that ends the run")
                            .fix(fix),
                    );
                }
                return true;
            }
        }
        false
    }

    fn statement(&mut self, statement: &Statement, known: &mut Known) -> bool {
        match &statement.kind {
            StatementKind::UpdateVariables { assignments } => {
                for assignment in assignments {
                    let target = Nullable::Var(assignment.target.text.clone());
                    if is_present(&assignment.value, known) {
                        known.insert(target);
                    } else {
                        known.remove(&target);
                    }
                }
                false
            }
            StatementKind::WebRequest(request) => {
                for mapping in &request.result_mapping {
                    known.remove(&Nullable::Var(mapping.target.text.clone()));
                }
                false
            }
            StatementKind::If(if_statement) => {
                let mut then_known = known.clone();
                then_known.extend(facts(&if_statement.condition, true));
                let then_exits = self.block(&if_statement.then_block, &mut then_known);
                let mut else_known = known.clone();
                else_known.extend(facts(&if_statement.condition, false));
                let else_exits = match &if_statement.else_block {
                    Some(block) => self.block(block, &mut else_known),
                    None => false,
                };
                *known = match (then_exits, else_exits) {
                    (true, true) => return true,
                    (true, false) => else_known,
                    (false, true) => then_known,
                    (false, false) => then_known.intersection(&else_known).cloned().collect(),
                };
                false
            }
            StatementKind::UpdateSecrets { updates, .. } => {
                for update in updates {
                    if let Some(value) = &update.value {
                        self.require_present(statement.span, &update.secret, value, known);
                    }
                }
                false
            }
            StatementKind::Throw { .. } => true,
            StatementKind::TokenGrant(grant) => self.block(&grant.steps, known),
            StatementKind::Try { body, catches } => {
                let before = known.clone();
                let mut outcomes = Vec::new();
                let mut body_known = before.clone();
                if !self.block(body, &mut body_known) {
                    outcomes.push(body_known);
                }
                for catch in catches {
                    // The error may come from any point of the body.
                    let mut catch_known = before.clone();
                    if !self.block(&catch.body, &mut catch_known) {
                        outcomes.push(catch_known);
                    }
                }
                let Some(first) = outcomes.pop() else {
                    return true;
                };
                *known = outcomes
                    .iter()
                    .fold(first, |acc, o| acc.intersection(o).cloned().collect());
                false
            }
            StatementKind::Foreach { body, .. } | StatementKind::While { body, .. } => {
                // The body runs zero or more times, and may leave by `break`
                // from any point: what it writes is unknown afterwards, and
                // what held before holds in it only until it writes.
                let written = written_in(body);
                let mut inside = known.clone();
                inside.retain(|n| !written.contains(n));
                if let StatementKind::While { condition, .. } = &statement.kind {
                    inside.extend(facts(condition, true));
                }
                self.block(body, &mut inside);
                known.retain(|n| !written.contains(n));
                false
            }
            StatementKind::RunService { .. }
            | StatementKind::Sleep { .. }
            | StatementKind::Log { .. }
            | StatementKind::Break => false,
        }
    }

    /// `statement` is the update: the fix puts it inside `if has_value`.
    fn require_present(&mut self, statement: Span, secret: &Name, value: &Expr, known: &Known) {
        let mut unguarded: Vec<(Nullable, Span)> = Vec::new();
        value.walk(&mut |e| {
            if let Some(n) = Nullable::of(e)
                && !known.contains(&n)
                && !unguarded.iter().any(|(u, _)| *u == n)
            {
                unguarded.push((n, e.span));
            }
        });
        if matches!(value.kind, ExprKind::Null) {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::UnguardedSecretUpdate,
                    format!("`{}` is set to null", secret.text),
                )
                .label(value.span, "this erases the secret's value")
                .help("use `svc secret rm` to remove a secret's value"),
            );
            return;
        }
        for (nullable, span) in unguarded {
            let name = nullable.display();
            self.diagnostics.push(
                Diagnostic::new(
                    Code::UnguardedSecretUpdate,
                    format!("`{}` may be updated with an empty value", secret.text),
                )
                .label(span, format!("`{name}` is not checked for a value on every path to here"))
                .help(format!(
                    "guard the update with `if has_value({name}) {{ ... }}`, so a failed request cannot erase a good secret"
                ))
                .fix(self.layout.guard(statement, &name)),
            );
        }
    }
}

/// The variables a block may leave without a value: those it assigns or
/// maps, at any depth.
fn written_in(block: &Block) -> Known {
    let mut out = Known::new();
    block.walk(&mut |statement| match &statement.kind {
        StatementKind::UpdateVariables { assignments } => {
            for assignment in assignments {
                out.insert(Nullable::Var(assignment.target.text.clone()));
            }
        }
        StatementKind::WebRequest(request) => {
            for mapping in &request.result_mapping {
                out.insert(Nullable::Var(mapping.target.text.clone()));
            }
        }
        _ => {}
    });
    out
}

/// Whether an expression's value is known to be present.
fn is_present(expr: &Expr, known: &Known) -> bool {
    match &expr.kind {
        ExprKind::Null => false,
        ExprKind::String { parts } => parts.iter().any(|p| match p {
            StringPart::Text { value } => !value.is_empty(),
            StringPart::Interpolation { expr } => is_present(expr, known),
        }),
        // Operators give a value or fail the run: never null.
        ExprKind::Number { .. }
        | ExprKind::Duration { .. }
        | ExprKind::Bool { .. }
        | ExprKind::Not { .. }
        | ExprKind::Binary { .. } => true,
        // A function of a null argument is null, except those made for it.
        ExprKind::Call { function, args } => match Function::from_name(function.as_str()) {
            Some(
                Function::HasValue
                | Function::Len
                | Function::ToString
                | Function::JsonString
                | Function::Uuid
                | Function::Now,
            ) => true,
            Some(Function::Default) => args.iter().any(|a| is_present(a, known)),
            // A path that matches nothing, or the JSON `null`.
            Some(Function::JsonPath | Function::JsonParse) => false,
            Some(_) => args.iter().all(|a| is_present(a, known)),
            None => true,
        },
        ExprKind::Error { .. }
        | ExprKind::Run { .. }
        | ExprKind::Connection {
            field: ConnectionField::Id,
        } => true,
        // A tag the connection does not have is null.
        ExprKind::Connection {
            field: ConnectionField::Tag(_),
        } => false,
        ExprKind::Variable { .. } | ExprKind::Secret { .. } | ExprKind::Param { .. } => {
            Nullable::of(expr).is_some_and(|n| known.contains(&n))
        }
    }
}

/// What is known present when `condition` evaluates to `outcome`.
fn facts(condition: &Expr, outcome: bool) -> Known {
    let mut out = Known::new();
    match &condition.kind {
        ExprKind::Call { function, args } if function.text == "has_value" && outcome => {
            if let [arg] = args.as_slice()
                && let Some(n) = Nullable::of(arg)
            {
                out.insert(n);
            }
        }
        ExprKind::Not { operand } => return facts(operand, !outcome),
        ExprKind::Binary { op, lhs, rhs } => match (op, outcome) {
            (BinaryOp::And, true) | (BinaryOp::Or, false) => {
                out.extend(facts(lhs, outcome));
                out.extend(facts(rhs, outcome));
            }
            (BinaryOp::And, false) | (BinaryOp::Or, true) => {
                let left = facts(lhs, outcome);
                let right = facts(rhs, outcome);
                out.extend(left.intersection(&right).cloned());
            }
            (BinaryOp::Ne, true) | (BinaryOp::Eq, false) => {
                if let Some(n) = compared_with_null(lhs, rhs) {
                    out.insert(n);
                }
            }
            (BinaryOp::Eq, true) => {
                // `x == "value"` holds only when x has that value.
                for (a, b) in [(lhs, rhs), (rhs, lhs)] {
                    if let Some(n) = Nullable::of(a)
                        && is_present(b, &Known::new())
                    {
                        out.insert(n);
                    }
                }
            }
            _ => {}
        },
        _ => {}
    }
    out
}

fn compared_with_null(lhs: &Expr, rhs: &Expr) -> Option<Nullable> {
    match (&lhs.kind, &rhs.kind) {
        (_, ExprKind::Null) => Nullable::of(lhs),
        (ExprKind::Null, _) => Nullable::of(rhs),
        _ => None,
    }
}
