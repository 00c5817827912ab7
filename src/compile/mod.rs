//! `svc compile`: a checked program in other forms, for tools: the AST as
//! JSON, the OpenAPI document of its endpoints, a Graphviz picture.

mod dot;
pub mod openapi;

pub use dot::dot;

use serde_json::{Value, json};

use crate::program::CheckedProgram;

/// The checked AST, with the files its spans index.
pub fn ast(checked: &CheckedProgram) -> Value {
    json!({
        "files": checked.sources.files().map(|(_, f)| f.name.clone()).collect::<Vec<_>>(),
        "program": checked.program,
    })
}

/// The OpenAPI 3.1 document `svc serve` publishes.
pub fn openapi(checked: &CheckedProgram) -> Value {
    crate::compile::openapi::document(checked)
}
