//! The program as the checker resolved it: the one model every consumer
//! reads (the language server's definition, references, rename, hover and
//! completion, `svc compile --emit dot`, the interpreter's lock and journal
//! decisions).
//!
//! - **Names**: every place a declared name is written, each use linked to
//!   what it names, recorded by the checker as it resolves the name (there
//!   is no second walk of the program for names).
//! - **Effects**: for each endpoint, the secrets its run can read and
//!   update, itself and through the endpoints it runs (`run_service`), and
//!   the endpoints it runs.

use rustc_hash::FxHashMap as HashMap;

use crate::source::{FileId, Span};
use crate::syntax::ast::Name;

/// What a name refers to. Members are qualified by their service (and
/// endpoint), so `token` in two services are two symbols.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Symbol {
    Secret(String),
    Role(String),
    Identity(String),
    Client(String),
    Service(String),
    Variable {
        service: String,
        name: String,
    },
    Action {
        service: String,
        name: String,
    },
    Endpoint {
        service: String,
        name: String,
    },
    Param {
        service: String,
        endpoint: String,
        name: String,
    },
    Schedule(String),
}

impl Symbol {
    pub fn name(&self) -> &str {
        match self {
            Symbol::Secret(name)
            | Symbol::Role(name)
            | Symbol::Identity(name)
            | Symbol::Client(name)
            | Symbol::Service(name)
            | Symbol::Schedule(name) => name,
            Symbol::Variable { name, .. }
            | Symbol::Action { name, .. }
            | Symbol::Endpoint { name, .. }
            | Symbol::Param { name, .. } => name,
        }
    }

    /// The same kind of symbol, in the same scope, with another name.
    pub fn renamed(&self, to: &str) -> Symbol {
        let to = to.to_string();
        match self {
            Symbol::Secret(_) => Symbol::Secret(to),
            Symbol::Role(_) => Symbol::Role(to),
            Symbol::Identity(_) => Symbol::Identity(to),
            Symbol::Client(_) => Symbol::Client(to),
            Symbol::Service(_) => Symbol::Service(to),
            Symbol::Schedule(_) => Symbol::Schedule(to),
            Symbol::Variable { service, .. } => Symbol::Variable {
                service: service.clone(),
                name: to,
            },
            Symbol::Action { service, .. } => Symbol::Action {
                service: service.clone(),
                name: to,
            },
            Symbol::Endpoint { service, .. } => Symbol::Endpoint {
                service: service.clone(),
                name: to,
            },
            Symbol::Param {
                service, endpoint, ..
            } => Symbol::Param {
                service: service.clone(),
                endpoint: endpoint.clone(),
                name: to,
            },
        }
    }

    /// The word for the kind, as the language writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            Symbol::Secret(_) => "secret",
            Symbol::Role(_) => "role",
            Symbol::Identity(_) => "identity",
            Symbol::Client(_) => "oauth_client",
            Symbol::Service(_) => "service",
            Symbol::Variable { .. } => "var",
            Symbol::Action { .. } => "action",
            Symbol::Endpoint { .. } => "endpoint",
            Symbol::Param { .. } => "param",
            Symbol::Schedule(_) => "schedule",
        }
    }

    /// `service.name` for members, the name for the rest.
    pub fn qualified(&self) -> String {
        match self {
            Symbol::Variable { service, name }
            | Symbol::Action { service, name }
            | Symbol::Endpoint { service, name } => format!("{service}.{name}"),
            Symbol::Param {
                service,
                endpoint,
                name,
            } => format!("{service}.{endpoint}({name})"),
            _ => self.name().to_string(),
        }
    }
}

/// One place a name is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Occurrence {
    pub symbol: Symbol,
    /// The name itself, nothing around it.
    pub span: Span,
    pub declaration: bool,
}

/// A declaration: its name and the span of the whole declaration.
#[derive(Clone, Debug)]
pub struct Declaration {
    pub symbol: Symbol,
    pub name: Span,
    pub whole: Span,
    /// The declaration that holds it (a service for its members).
    pub container: Option<String>,
}

/// The index of one program.
#[derive(Debug, Default)]
pub struct Names {
    /// Every declaration, in program order; a name declared twice has two.
    pub declarations: Vec<Declaration>,
    /// Every occurrence as recorded, until a question needs the index.
    recorded: Vec<Occurrence>,
    /// Built on the first question: an editor checks after every edit,
    /// and most checks are asked only for their diagnostics.
    index: std::sync::OnceLock<Index>,
}

#[derive(Debug, Default)]
struct Index {
    /// Per file, sorted by start.
    occurrences: HashMap<FileId, Vec<Occurrence>>,
    by_symbol: HashMap<Symbol, Vec<Span>>,
}

impl Names {
    /// The index of what a [`Recorder`] recorded.
    fn new(recorded: Recorder) -> Names {
        Names {
            declarations: recorded.declarations,
            recorded: recorded.occurrences,
            index: std::sync::OnceLock::new(),
        }
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let mut index = Index::default();
            for occurrence in &self.recorded {
                index
                    .by_symbol
                    .entry(occurrence.symbol.clone())
                    .or_default()
                    .push(occurrence.span);
                index
                    .occurrences
                    .entry(occurrence.span.file)
                    .or_default()
                    .push(occurrence.clone());
            }
            // A name the checker resolved twice (a client's secret is
            // checked as a value and as a credential) is one occurrence.
            for list in index.occurrences.values_mut() {
                list.sort_by(|a, b| {
                    (a.span.start, a.span.len, a.declaration, &a.symbol).cmp(&(
                        b.span.start,
                        b.span.len,
                        b.declaration,
                        &b.symbol,
                    ))
                });
                list.dedup();
            }
            for spans in index.by_symbol.values_mut() {
                spans.sort_by_key(|s| (s.file, s.start, s.len));
                spans.dedup();
            }
            index
        })
    }

    /// The name written at a byte offset of a file (the offset may be just
    /// past its last character, where an editor's cursor stands after typing).
    pub fn at(&self, file: FileId, offset: usize) -> Option<&Occurrence> {
        let list = self.index().occurrences.get(&file)?;
        let after = list.partition_point(|o| (o.span.start as usize) <= offset);
        list[..after]
            .iter()
            .rev()
            .take(4)
            .find(|o| offset <= o.span.end())
    }

    /// Where a symbol is declared: the first declaration, as the checker
    /// resolves it.
    pub fn declaration(&self, symbol: &Symbol) -> Option<&Declaration> {
        self.declarations.iter().find(|d| &d.symbol == symbol)
    }

    pub fn is_declared(&self, symbol: &Symbol) -> bool {
        self.declaration(symbol).is_some()
    }

    /// Every span of a symbol, declarations included, in program order.
    pub fn spans(&self, symbol: &Symbol) -> &[Span] {
        self.index()
            .by_symbol
            .get(symbol)
            .map_or(&[], Vec::as_slice)
    }

    pub fn in_file(&self, file: FileId) -> &[Occurrence] {
        self.index()
            .occurrences
            .get(&file)
            .map_or(&[], Vec::as_slice)
    }
}

/// What the checker records as it resolves names: declarations and uses,
/// in no particular order. Off (recording nothing) unless asked for.
#[derive(Debug, Default)]
pub struct Recorder {
    on: bool,
    occurrences: Vec<Occurrence>,
    declarations: Vec<Declaration>,
}

impl Recorder {
    pub fn new(on: bool) -> Recorder {
        Recorder {
            on,
            ..Recorder::default()
        }
    }

    /// A name used where it refers to `symbol`.
    pub fn use_(&mut self, symbol: impl FnOnce() -> Symbol, span: Span) {
        if self.on {
            self.occurrences.push(Occurrence {
                symbol: symbol(),
                span,
                declaration: false,
            });
        }
    }

    /// A declaration: its name, the whole of it, and what holds it.
    pub fn declare(
        &mut self,
        symbol: impl FnOnce() -> Symbol,
        name: &Name,
        whole: Span,
        container: Option<&str>,
    ) {
        if !self.on {
            return;
        }
        let symbol = symbol();
        self.occurrences.push(Occurrence {
            symbol: symbol.clone(),
            span: name.span,
            declaration: true,
        });
        self.declarations.push(Declaration {
            symbol,
            name: name.span,
            whole,
            container: container.map(str::to_string),
        });
    }

    /// The names, indexed; `None` when nothing was recorded.
    pub fn finish(self) -> Option<Names> {
        let mut recorded = self;
        if !recorded.on {
            return None;
        }
        // The program's order, which the checker's order is not.
        recorded
            .declarations
            .sort_by_key(|d| (d.whole.file, d.whole.start, d.name.start));
        Some(Names::new(recorded))
    }
}

/// What an action's own statements do (not the endpoints they run).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ActionEffects {
    pub reads: std::collections::BTreeSet<String>,
    pub writes: std::collections::BTreeSet<String>,
    /// `run_service` calls: the endpoint, and the account it runs as.
    pub runs: std::collections::BTreeSet<(String, Option<String>)>,
    /// The `oauth_client`s its requests authenticate as.
    pub clients: std::collections::BTreeSet<String>,
}

/// What running an endpoint can do to secrets and other endpoints,
/// itself and through the endpoints it runs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Secrets its statements read (`secret.NAME`, a client's credentials).
    pub reads: std::collections::BTreeSet<String>,
    /// Secrets it updates.
    pub writes: std::collections::BTreeSet<String>,
    /// Endpoints it runs (`SERVICE.ENDPOINT`).
    pub runs: std::collections::BTreeSet<String>,
    /// Secrets it reads or updates for the connection it runs for: its
    /// own, and those of the endpoints it runs without `for_connection`
    /// (which run for a connection they name).
    pub in_connection: std::collections::BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAM: &str = r#"secret T { environment_specific refreshed_by api.get as bot min_valid 5m }
role r { grant run api.get grant run api.* grant update_secret T grant read_secret T }
service_account bot { roles r }
oauth_client c { token_url "http://127.0.0.1/t" client_id secret.T client_auth none stores { access_token = T } }
service api {
  var v: string
  action a {
    web_request { url "http://127.0.0.1/${v}" auth client(c) result_mapping { v = $.x } }
    foreach item in json_parse(v) { log item }
    if has_value(v) { update_secret T = v }
    log param.n
  }
  endpoint get { methods GET process a params { n: number = 1 } response { body v reveals T } }
}
schedule s { endpoint api.get service_account bot every 1h before_expiry T 5m params { n = 2 } }
"#;

    fn spans(names: &Names, symbol: &Symbol) -> Vec<&'static str> {
        names
            .spans(symbol)
            .iter()
            .map(|s| &PROGRAM[s.range()])
            .collect()
    }

    #[test]
    fn every_use_of_every_kind_is_indexed() {
        let (program, diagnostics) = crate::syntax::parse_file(FileId(0), PROGRAM);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let analysis = crate::check::check_with_names(&program, &crate::source::NoTexts);
        let names = analysis.names.expect("recorded");
        let member = |name: &str| (String::from("api"), name.to_string());
        // Declaration, two grants, client_id, stores, the update, reveals,
        // before_expiry.
        assert_eq!(spans(&names, &Symbol::Secret("T".into())).len(), 8);
        assert_eq!(spans(&names, &Symbol::Identity("bot".into())), ["bot"; 3]);
        assert_eq!(spans(&names, &Symbol::Role("r".into())), ["r"; 2]);
        assert_eq!(spans(&names, &Symbol::Client("c".into())), ["c"; 2]);
        // Declaration, refreshed_by, two grants, the schedule.
        assert_eq!(spans(&names, &Symbol::Service("api".into())), ["api"; 5]);
        let (service, name) = member("get");
        assert_eq!(
            spans(&names, &Symbol::Endpoint { service, name }),
            ["get"; 4]
        );
        let (service, name) = member("v");
        // Declaration, interpolation, mapping target, json_parse argument,
        // has_value, update value, response body; `item` is not a service
        // variable.
        assert_eq!(spans(&names, &Symbol::Variable { service, name }), ["v"; 7]);
        let (service, name) = member("a");
        assert_eq!(spans(&names, &Symbol::Action { service, name }), ["a"; 2]);
        let param = Symbol::Param {
            service: "api".into(),
            endpoint: "get".into(),
            name: "n".into(),
        };
        assert_eq!(spans(&names, &param), ["n"; 3]);
        assert_eq!(spans(&names, &Symbol::Schedule("s".into())), ["s"]);
        // The cursor just after a name still finds it.
        let end = PROGRAM.find("roles r").unwrap() + "roles r".len();
        assert_eq!(
            names.at(FileId(0), end).unwrap().symbol,
            Symbol::Role("r".into())
        );
        assert!(names.at(FileId(0), 0).is_none());
    }
}
