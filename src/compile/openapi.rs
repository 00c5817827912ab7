//! The OpenAPI 3.1 document of a program's endpoints, as `svc serve`
//! publishes them at `/api/services/openapi.json`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::syntax::ast::*;

/// Builds the document. It depends only on the checked program, so `svc
/// compile --emit openapi` and the server publish the same one.
pub fn document(checked: &crate::program::CheckedProgram) -> Value {
    let program = &checked.program;
    let mut paths = serde_json::Map::new();
    for service in &program.services {
        for endpoint in &service.endpoints {
            let params = endpoint_params(service, endpoint);
            let per_account = checked
                .analysis
                .per_account
                .get(&format!("{}.{}", service.name.text, endpoint.name.text));
            let mut item = serde_json::Map::new();
            for method in &endpoint.methods {
                let method = method.text.to_ascii_lowercase();
                let mut operation = operation(service, endpoint, &method, &params);
                if let Some(client) = per_account {
                    add_connection(&mut operation, client);
                }
                item.insert(method.clone(), operation);
            }
            paths.insert(
                format!("/api/services/{}/{}", service.name.text, endpoint.name.text),
                Value::Object(item),
            );
        }
    }
    paths.insert("/api/jobs/{id}".into(), jobs_path());
    paths.insert("/api/secrets/{name}".into(), secret_path(program));
    paths.insert("/api/connections".into(), connections_path());
    paths.insert(
        "/api/connections/{client}/{connection_id}".into(),
        connection_path(),
    );
    paths.insert(
        "/api/connections/{client}/{connection_id}/secrets/{name}".into(),
        account_secret_path(),
    );
    if program.oauth_clients.iter().any(|c| c.per_account) {
        paths.insert("/api/connect/sessions".into(), connect_sessions_path());
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "svc endpoints",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Endpoints of the svc program: each runs its action as the caller, \
                            identified by an API key (`svc key create`)."
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": components(),
    })
}

/// The `param.NAME` an endpoint's action reads.
fn endpoint_params(service: &ServiceDecl, endpoint: &EndpointDecl) -> BTreeSet<String> {
    let mut params = BTreeSet::new();
    let Some(process) = &endpoint.process else {
        return params;
    };
    let Some(action) = service.actions.iter().find(|a| a.name.text == process.text) else {
        return params;
    };
    action.body.walk(&mut |statement| {
        for expr in statement.expressions() {
            expr.walk(&mut |e| {
                if let ExprKind::Param { name } = &e.kind {
                    params.insert(name.text.clone());
                }
            });
        }
    });
    params
}

fn operation(
    service: &ServiceDecl,
    endpoint: &EndpointDecl,
    method: &str,
    params: &BTreeSet<String>,
) -> Value {
    let key = format!("{}.{}", service.name.text, endpoint.name.text);
    let summary = endpoint
        .description
        .as_ref()
        .map_or_else(|| format!("Run {key}"), |d| d.value.clone());
    let mut parameters = vec![json!({
        "name": "async",
        "in": "query",
        "required": false,
        "description": "Answer 202 at once with a job to poll, instead of the run record",
        "schema": {"type": "boolean"}
    })];
    let with_body = matches!(method, "post" | "put" | "patch");
    if let Some(declared) = &endpoint.params {
        return declared_operation(service, endpoint, method, declared, parameters, summary);
    }
    if !with_body {
        for param in params {
            parameters.push(json!({
                "name": param,
                "in": "query",
                "required": false,
                "description": format!("`param.{param}` in the action"),
                "schema": {"type": "string"}
            }));
        }
    }
    let mut operation = json!({
        "operationId": format!("{}_{}_{method}", service.name.text, endpoint.name.text),
        "summary": summary,
        "tags": [service.name.text],
        "parameters": parameters,
        "responses": {
            "200": {"description": "The run succeeded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunRecord"}}}},
            "202": {"description": "The run started (`async=true`)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": {"$ref": "#/components/responses/Forbidden"},
            "502": {"description": "The run failed; the record says why", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunRecord"}}}}
        }
    });
    if with_body {
        let properties: serde_json::Map<String, Value> = params
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    json!({"description": format!("`param.{p}` in the action")}),
                )
            })
            .collect();
        operation["requestBody"] = json!({
            "required": false,
            "content": {
                "application/json": {"schema": {"type": "object", "properties": properties}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": properties}}
            }
        });
    }
    operation
}

/// The JSON schema of a declared parameter's values.
fn param_schema(param: &ParamDecl) -> Value {
    let Some(t) = param.param_type() else {
        return json!({});
    };
    let scalar = |base: Type| match base {
        Type::String => json!({"type": "string"}),
        Type::Number => json!({"type": "number"}),
        Type::Bool => json!({"type": "boolean"}),
        Type::Duration => {
            json!({"type": ["number", "string"], "description": "seconds, or a duration such as `90s` or `5m`"})
        }
        _ => json!({}),
    };
    let mut schema = if t.list {
        json!({"type": "array", "items": scalar(t.base)})
    } else {
        scalar(t.base)
    };
    if let Some(default) = param
        .default
        .as_ref()
        .and_then(crate::check::values::constant)
    {
        schema["default"] = default;
    }
    schema
}

/// An operation whose parameters and response the endpoint declares.
fn declared_operation(
    service: &ServiceDecl,
    endpoint: &EndpointDecl,
    method: &str,
    declared: &[ParamDecl],
    mut parameters: Vec<Value>,
    summary: String,
) -> Value {
    let with_body = matches!(method, "post" | "put" | "patch");
    if !with_body {
        for param in declared {
            parameters.push(json!({
                "name": param.name.text,
                "in": "query",
                "required": param.required(),
                "description": format!("{} parameter", param.type_name.text),
                "schema": param_schema(param),
            }));
        }
    }
    let (status, success) = match &endpoint.response {
        Some(response) => {
            let status = response.status.as_ref().map_or(200, |s| s.value);
            let schema = match &response.body {
                Some(ResponseBody::Json { fields, .. }) => {
                    let properties: serde_json::Map<String, Value> = fields
                        .iter()
                        .map(|f| (f.name.value.clone(), value_schema(service, &f.value)))
                        .collect();
                    json!({"type": "object", "properties": properties})
                }
                Some(ResponseBody::Expr(expr)) => value_schema(service, expr),
                None => json!({"type": "null"}),
            };
            (
                status.to_string(),
                json!({"description": "The response the endpoint declares (the run's id is in `X-Svc-Run`)",
                       "headers": {"X-Svc-Run": {"schema": {"type": "string"}, "description": "the run's id"}},
                       "content": {"application/json": {"schema": schema}}}),
            )
        }
        None => (
            "200".to_string(),
            json!({"description": "The run succeeded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunRecord"}}}}),
        ),
    };
    let mut responses = serde_json::Map::new();
    responses.insert(status, success);
    responses.insert("202".into(), json!({"description": "The run started (`async=true`)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}));
    responses.insert("400".into(), json!({"description": "A parameter is missing, unknown or of the wrong type (`invalid_param`)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}));
    responses.insert(
        "401".into(),
        json!({"$ref": "#/components/responses/Unauthorized"}),
    );
    responses.insert(
        "403".into(),
        json!({"$ref": "#/components/responses/Forbidden"}),
    );
    responses.insert("502".into(), json!({"description": "The run failed; the record says why", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunRecord"}}}}));
    let mut operation = json!({
        "operationId": format!("{}_{}_{method}", service.name.text, endpoint.name.text),
        "summary": summary,
        "tags": [service.name.text],
        "parameters": parameters,
        "responses": responses,
    });
    if with_body {
        let properties: serde_json::Map<String, Value> = declared
            .iter()
            .map(|p| (p.name.text.clone(), param_schema(p)))
            .collect();
        let required: Vec<&str> = declared
            .iter()
            .filter(|p| p.required())
            .map(|p| p.name.as_str())
            .collect();
        let schema = json!({"type": "object", "properties": properties, "required": required,
                            "additionalProperties": false});
        operation["requestBody"] = json!({
            "required": !required.is_empty(),
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema}
            }
        });
    }
    operation
}

/// The schema of what an expression gives, as far as the program says.
fn value_schema(service: &ServiceDecl, expr: &Expr) -> Value {
    let t = match &expr.kind {
        ExprKind::String { .. } => Some(Type::String),
        ExprKind::Number { .. } => Some(Type::Number),
        ExprKind::Bool { .. } => Some(Type::Bool),
        ExprKind::Variable { name } => service
            .vars
            .iter()
            .find(|v| v.name.text == name.text)
            .and_then(|v| Type::from_name(&v.type_name.text)),
        _ => None,
    };
    match t {
        Some(Type::String) | Some(Type::Time) => json!({"type": "string"}),
        Some(Type::Number) | Some(Type::Duration) => json!({"type": "number"}),
        Some(Type::Bool) => json!({"type": "boolean"}),
        _ => json!({}),
    }
}

fn jobs_path() -> Value {
    json!({
        "get": {
            "operationId": "get_job",
            "summary": "The state of an asynchronous run",
            "tags": ["svc"],
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "The job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"}
            }
        }
    })
}

fn secret_path(program: &Program) -> Value {
    let mut path = secret_read();
    let refreshed: Vec<String> = program
        .secrets
        .iter()
        .filter_map(|s| {
            let refresher = s.refreshed_by.as_ref()?;
            let min_valid = refresher
                .min_valid
                .as_ref()
                .map_or("0s", |m| m.text.as_str());
            Some(format!(
                "`{}` (by `{}`, valid for {min_valid} more)",
                s.name.text,
                refresher.endpoint.display()
            ))
        })
        .collect();
    if !refreshed.is_empty() {
        let get = &mut path["get"];
        get["description"] = json!(format!(
            "A secret declared with `refreshed_by` is refreshed before it is returned when it \
             expires within its `min_valid` or has no known expiry; concurrent reads wait for \
             one refresh. Refreshed on read: {}.",
            refreshed.join(", ")
        ));
        get["responses"]["502"] = json!({
            "description": "The refresh failed (`refresh_failed`; `cause` is the run's error code); no value is returned",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        });
    }
    path
}

fn secret_read() -> Value {
    json!({
        "get": {
            "operationId": "read_secret",
            "summary": "The current value of a secret, for callers granted `read_secret`; every read is audited",
            "tags": ["svc"],
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "The secret", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Secret"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"}
            }
        }
    })
}

/// A per-account endpoint's operation takes the account it runs for.
fn add_connection(operation: &mut Value, client: &str) {
    if let Some(parameters) = operation["parameters"].as_array_mut() {
        parameters.push(json!({
            "name": "connection",
            "in": "query",
            "required": true,
            "description": format!("The connected account of `{client}` the run is for (its connection id)"),
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,128}$"}
        }));
    }
    if let Some(responses) = operation["responses"].as_object_mut() {
        responses.insert(
            "404".into(),
            json!({"$ref": "#/components/responses/NotFound"}),
        );
    }
}

fn connections_path() -> Value {
    let query = |name: &str, description: &str| json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}});
    json!({
        "get": {
            "operationId": "list_connections",
            "summary": "A page of the connections whose client the caller holds `read_status` or `connect` on; never a token",
            "tags": ["svc"],
            "parameters": [
                query("client", "Only this oauth_client's"),
                query("state", "Only those in this state"),
                query("tag", "Only connected accounts with this tag, KEY=VALUE (repeatable)"),
                query("prefix", "Only connected accounts whose id starts with this"),
                {"name": "limit", "in": "query", "required": false, "description": "At most this many (100 unless given)", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                query("cursor", "Where the page starts: `next_cursor` of the page before")
            ],
            "responses": {
                "200": {"description": "The connections the caller may read (possibly none)", "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["connections", "next_cursor"],
                    "properties": {
                        "connections": {"type": "array", "items": {"$ref": "#/components/schemas/Connection"}},
                        "next_cursor": {"type": ["string", "null"]}
                    }
                }}}},
                "400": {"description": "A filter, limit or cursor that is not one", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"}
            }
        }
    })
}

fn connection_parameters() -> Value {
    json!([
        {"name": "client", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "connection_id", "in": "path", "required": true, "schema": {"type": "string"}}
    ])
}

fn connection_path() -> Value {
    let answers = |what: &str| {
        json!({
            "200": {"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Connection"}}}},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": {"$ref": "#/components/responses/Forbidden"},
            "404": {"$ref": "#/components/responses/NotFound"}
        })
    };
    json!({
        "get": {
            "operationId": "show_connection",
            "summary": "The state of one connection, for callers granted `read_status CLIENT` or `connect CLIENT`; never a token",
            "tags": ["svc"],
            "parameters": connection_parameters(),
            "responses": answers("The connection")
        },
        "patch": {
            "operationId": "tag_connection",
            "summary": "Replace a connected account's tags (`connect CLIENT`)",
            "tags": ["svc"],
            "parameters": connection_parameters(),
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["tags"],
                "properties": {"tags": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 16}}
            }}}},
            "responses": answers("The connection with its new tags")
        },
        "delete": {
            "operationId": "delete_connection",
            "summary": "Revoke a connection's tokens at the provider, clear them, and forget it (`connect CLIENT`)",
            "tags": ["svc"],
            "parameters": connection_parameters(),
            "responses": {
                "200": {"description": "Deleted", "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["client", "connection_id", "state", "revoked", "cleared"],
                    "properties": {
                        "client": {"type": "string"},
                        "connection_id": {"type": "string"},
                        "state": {"const": "deleted"},
                        "revoked": {"type": "array", "items": {"type": "string"}},
                        "not_revoked_at_provider": {"type": ["string", "null"]},
                        "cleared": {"type": "array", "items": {"type": "string"}},
                        "error": {}
                    }
                }}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"},
                "409": {"description": "A run of the connection did not finish in time", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "502": {"description": "The provider refused the revocation: nothing was cleared", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        }
    })
}

fn account_secret_path() -> Value {
    let mut parameters = connection_parameters();
    if let Some(list) = parameters.as_array_mut() {
        list.push(
            json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
        );
    }
    json!({
        "get": {
            "operationId": "read_account_secret",
            "summary": "A connected account's value of a per-account secret (`read_secret NAME`), refreshed first when its `refreshed_by` says so",
            "tags": ["svc"],
            "parameters": parameters,
            "responses": {
                "200": {"description": "The value", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Secret"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"},
                "409": {"description": "The account needs a person: nothing was sent", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        }
    })
}

/// `POST /api/connect/sessions` (hosted consent, docs/connections.md).
fn connect_sessions_path() -> Value {
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "post": {
            "operationId": "create_connect_session",
            "summary": "A single-use consent link, valid 10 minutes, for one connection of a `per_account` client; for callers granted `connect CLIENT`",
            "tags": ["svc"],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["client", "connection_id"],
                    "additionalProperties": false,
                    "properties": {
                        "client": {"type": "string", "description": "A `per_account` oauth_client"},
                        "connection_id": {"type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,128}$"},
                        "tags": {"type": "object", "maxProperties": 16, "additionalProperties": {"type": "string"}, "description": "Replace the connection's tags when the consent succeeds; without them a reconnected account keeps its own"},
                        "return_to": {"type": "string", "format": "uri", "description": "Where the browser goes back: under one of the client's `return_to` URLs"}
                    }
                }}}
            },
            "responses": {
                "201": {"description": "The link to hand to the customer's browser", "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["url", "expires_at"],
                    "properties": {
                        "url": {"type": "string", "format": "uri"},
                        "expires_at": {"type": "string", "format": "date-time"}
                    }
                }}}},
                "400": error("`bad_body`, `invalid_connection_id`, `invalid_tags`, `invalid_return_to` or `return_to_not_allowed`"),
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "404": error("`unknown_client`, `not_per_account`, or `hosted_consent_off`: the server has no `--public-url`")
            }
        }
    })
}

fn components() -> Value {
    let error = json!({"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "An svc API key: `svc key create --as IDENTITY --env ENV`"}
        },
        "responses": {
            "Unauthorized": {"description": "No key, or an unknown, revoked or expired key", "content": error["content"]},
            "Forbidden": {"description": "The key's identity lacks the grant", "content": error["content"]},
            "NotFound": {"description": "Not found", "content": error["content"]}
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}
                }}}
            },
            "RunRecord": {
                "type": "object",
                "required": ["id", "endpoint", "environment", "identity", "method", "trigger", "started_at", "duration_ms", "outcome", "trace"],
                "properties": {
                    "id": {"type": "string"},
                    "endpoint": {"type": "string"},
                    "environment": {"type": "string"},
                    "identity": {"type": "string"},
                    "method": {"type": "string"},
                    "trigger": {},
                    "started_at": {"type": "string", "format": "date-time"},
                    "duration_ms": {"type": "integer", "minimum": 0},
                    "outcome": {"type": "string", "enum": ["success", "failed", "denied"]},
                    "dry_run": {"type": "boolean"},
                    "trace": {"type": "array", "items": {"type": "object", "required": ["event"], "properties": {"event": {"type": "string"}}}},
                    "error": {"type": "object", "properties": {
                        "code": {"type": "string"}, "diagnostic": {"type": "string"}, "message": {"type": "string"},
                        "status": {"type": "integer"}, "help": {"type": "string"}
                    }},
                    "variables": {"type": "object"}
                }
            },
            "Job": {
                "type": "object",
                "required": ["job", "status"],
                "properties": {
                    "job": {"type": "string"},
                    "status": {"type": "string", "enum": ["running", "done"]},
                    "endpoint": {"type": "string"},
                    "url": {"type": "string"},
                    "record": {"$ref": "#/components/schemas/RunRecord"}
                }
            },
            "Connection": {
                "type": "object",
                "required": ["client", "connection_id", "environment", "state", "observed", "consecutive_failures", "reconsent_command"],
                "properties": {
                    "client": {"type": "string"},
                    "connection_id": {"type": "string"},
                    "environment": {"type": "string"},
                    "state": {"type": "string", "enum": ["healthy", "degraded", "needs_reconsent", "misconfigured", "revoked"]},
                    "observed": {"type": "boolean"},
                    "since": {"type": ["string", "null"], "format": "date-time"},
                    "consecutive_failures": {"type": "integer", "minimum": 0},
                    "last_success_at": {"type": ["string", "null"], "format": "date-time"},
                    "last_failure_at": {"type": ["string", "null"], "format": "date-time"},
                    "last_error": {"oneOf": [
                        {"type": "null"},
                        {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}, "description": {"type": "string"}}}
                    ]},
                    "refresh_token_expires_at": {"type": ["string", "null"], "format": "date-time"},
                    "access_token_expires_at": {"type": ["string", "null"], "format": "date-time"},
                    "next_refresh_at": {"type": ["string", "null"], "format": "date-time"},
                    "next_refresh_by": {"type": ["string", "null"]},
                    "reconsent_command": {"type": "string"},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            },
            "Secret": {
                "type": "object",
                "required": ["name", "value", "version"],
                "properties": {
                    "name": {"type": "string"},
                    "value": {"type": "string"},
                    "version": {"type": "integer"},
                    "updated_at": {"type": ["string", "null"], "format": "date-time"},
                    "expires_at": {"type": ["string", "null"], "format": "date-time"},
                    "client": {"type": "string", "description": "A connected account's value: its client"},
                    "connection_id": {"type": "string", "description": "A connected account's value: its id"}
                }
            }
        }
    })
}
