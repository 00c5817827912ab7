//! Warnings for declarations nothing uses.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::fixes::Layout;
use super::symbols::Symbols;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use crate::syntax::ast::Name;

/// What the checker saw used while it walked the program.
#[derive(Default)]
pub struct Usage<'p> {
    reads: HashMap<(&'p str, &'p str), Span>,
    assigned: HashSet<(&'p str, &'p str)>,
    actions: HashSet<(&'p str, &'p str)>,
    secrets: HashSet<&'p str>,
    roles: HashSet<&'p str>,
}

impl<'p> Usage<'p> {
    pub fn var_read(&mut self, service: &'p str, var: &'p Name) {
        self.reads
            .entry((service, var.as_str()))
            .or_insert(var.span);
    }
    pub fn var_assigned(&mut self, service: &'p str, var: &'p str) {
        self.assigned.insert((service, var));
    }
    pub fn action_used(&mut self, service: &'p str, action: &'p str) {
        self.actions.insert((service, action));
    }
    pub fn secret_used(&mut self, secret: &'p str) {
        self.secrets.insert(secret);
    }
    pub fn role_used(&mut self, role: &'p str) {
        self.roles.insert(role);
    }

    pub fn report(
        &self,
        symbols: &Symbols<'p>,
        layout: Layout<'_>,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        for service in &symbols.service_order {
            let name = service.name.as_str();
            for var in &service.vars {
                let key = (name, var.name.as_str());
                match self.reads.get(&key) {
                    None => diagnostics.push(
                        Diagnostic::new(Code::UnusedVariable, format!("variable `{}` is never read", var.name.text))
                            .label(var.name.span, "declared here")
                            .help("remove it, or use it in an expression")
                            // Nothing reads or writes it: removing it
                            // changes nothing. (One that is written would
                            // leave its assignments naming nothing.)
                            .fix(if self.assigned.contains(&key) {
                                None
                            } else {
                                layout.remove_line(
                                    var.span,
                                    format!("Remove `var {}`", var.name.text),
                                    true,
                                )
                            }),
                    ),
                    Some(read) if !self.assigned.contains(&key) => diagnostics.push(
                        Diagnostic::new(
                            Code::NeverAssigned,
                            format!("variable `{}` is read but never given a value", var.name.text),
                        )
                        .label(*read, "always null here")
                        .label(var.name.span, "declared here")
                        .help(format!(
                            "assign it in `update service_variables {{ {} = ... }}` or map it in `result_mapping`",
                            var.name.text
                        )),
                    ),
                    Some(_) => {}
                }
            }
            for action in &service.actions {
                if !self.actions.contains(&(name, action.name.as_str())) {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::UnusedAction,
                            format!("action `{}` is never processed", action.name.text),
                        )
                        .label(action.name.span, "no endpoint processes this action")
                        .help(format!(
                            "add an endpoint with `process {}`, or remove the action",
                            action.name.text
                        )),
                    );
                }
            }
        }
        for secret in &symbols.secret_order {
            if !self.secrets.contains(secret.name.as_str()) {
                diagnostics.push(
                    Diagnostic::new(Code::UnusedSecret, format!("secret `{}` is never used", secret.name.text))
                        .label(secret.name.span, "declared here")
                        .help("read it with `secret.NAME`, update it, grant `read_secret` on it, or remove it"),
                );
            }
        }
        for role in &symbols.role_order {
            if !self.roles.contains(role.name.as_str()) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::UnusedRole,
                        format!("role `{}` is given to nobody", role.name.text),
                    )
                    .label(role.name.span, "declared here")
                    .help(format!(
                        "add it to a user or service account (`roles {}`), or remove it",
                        role.name.text
                    )),
                );
            }
        }
    }
}
