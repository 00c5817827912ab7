//! Reading a response: the error of a non-2xx answer, and the result
//! mapping into service variables.

use super::error::{ErrorKind, RunError};
use super::interpreter::{Frame, Run};
use super::value::Value;
use crate::backend::record::Event;
use crate::net::http;
use crate::oauth::tokens::ErrorAnswer;
use crate::syntax::ast::*;

impl<'e> Run<'e> {
    /// The error for a non-2xx answer: the status and, when the body is an
    /// OAuth error, its `error` and `error_description`; never the body
    /// otherwise, which may echo the request.
    pub(super) fn http_error(
        &self,
        method: &str,
        url: &str,
        response: &http::Response,
    ) -> RunError {
        let status = response.status;
        let oauth = ErrorAnswer::parse(&response.body);
        let mut message = format!("{method} {url} answered {}", http::status_text(status));
        if let Some(answer) = &oauth {
            message.push_str(&format!(": {}", answer.error));
            if let Some(description) = &answer.error_description {
                message.push_str(&format!(" ({description})"));
            }
        }
        let help = match (status.as_u16(), oauth.as_ref().map(|a| a.error.as_str())) {
            (_, Some("invalid_grant")) => {
                "the grant was rejected: a refresh token may have been used already, revoked or expired; \
                 set a fresh one with `svc secret set`"
            }
            (_, Some("invalid_client")) | (401, _) => {
                "the server did not accept the client credentials; check the secrets sent"
            }
            (403, _) => "the credentials were accepted but lack permission",
            (404, _) => "check the URL",
            (429, _) | (500..=599, _) => {
                "the server is busy or failing; `retry { attempts ... }` retries such answers"
            }
            (300..=399, _) => "the server redirects; add `redirects N` to follow it",
            _ => "check the request against the API's documentation",
        };
        let mut error = RunError::new(
            ErrorKind::WebRequest {
                status: Some(status.as_u16()),
            },
            self.redactor.redact(&message),
        )
        .help(help);
        error.provider = oauth.map(|answer| {
            Box::new(ErrorAnswer {
                error: self.redactor.redact(&answer.error),
                error_description: answer.error_description.map(|d| self.redactor.redact(&d)),
            })
        });
        error
    }

    pub(super) fn map_results(
        &mut self,
        frame: &mut Frame<'e>,
        request: &'e WebRequest,
        response: &http::Response,
    ) -> Result<(), RunError> {
        let mut json: Option<serde_json::Value> = None;
        for mapping in &request.result_mapping {
            let target = mapping.target.as_str();
            let declared = self
                .script()
                .var_type(&frame.service.name.text, target)
                .unwrap_or(Type::Json);
            let fits = |problem: String, source: &str| {
                RunError::new(
                    ErrorKind::Mapping,
                    format!(
                        "{source} gave {problem}, which does not fit `{target}` ({})",
                        declared.name()
                    ),
                )
                .at(mapping.source.span())
            };
            let value = match &mapping.source {
                MappingSource::JsonPath { path, span } => {
                    if json.is_none() {
                        let content_type = response
                            .headers
                            .get(reqwest::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("no content type");
                        json = Some(serde_json::from_slice(&response.body).map_err(|_| {
                            RunError::new(
                                ErrorKind::Mapping,
                                format!(
                                    "the response is not JSON ({content_type}, {} bytes), so `{path}` cannot be read",
                                    response.body.len()
                                ),
                            )
                            .at(*span)
                            .help("check the URL and the `Accept` header; map `body` to read text")
                        })?);
                    }
                    let document = json.as_ref().expect("parsed above");
                    let compiled = self.engine.paths.get(path).ok_or_else(|| {
                        RunError::new(ErrorKind::Mapping, format!("invalid JSONPath `{path}`"))
                            .at(*span)
                    })?;
                    match compiled.query(document).first() {
                        None => Value::Null,
                        Some(found) => Value::from_json(found, declared)
                            .map_err(|p| fits(p, &format!("`{path}`")))?,
                    }
                }
                MappingSource::Header { name, .. } => {
                    match response.headers.get(name.value.as_str()) {
                        None => Value::Null,
                        Some(header) => {
                            let text = header.to_str().map_err(|_| {
                                fits("bytes that are not text".into(), "the header")
                            })?;
                            Value::from_text(text, declared)
                                .map_err(|p| fits(p, &format!("header `{}`", name.value)))?
                        }
                    }
                }
                MappingSource::Status { .. } => Value::Number(f64::from(response.status.as_u16()))
                    .into_type(declared)
                    .map_err(|p| fits(p, "`status`"))?,
                MappingSource::Body { .. } => {
                    let text = String::from_utf8_lossy(&response.body);
                    Value::from_text(&text, declared).map_err(|p| fits(p, "`body`"))?
                }
            };
            if frame.is_sensitive(target) {
                self.learn_variable(frame, target, &value);
            }
            frame.vars.insert(target, value.clone());
            let shown = self.show(frame, target, &value);
            self.trace.push(Event::Mapped {
                depth: frame.depth,
                name: target.to_string(),
                value: shown,
            });
        }
        Ok(())
    }
}
