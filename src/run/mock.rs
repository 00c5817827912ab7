//! Simulated answers for dry runs (`svc run --dry-run --mock FILE`), so a
//! dry run walks the branches a real answer would take.
//!
//! ```json
//! [
//!   { "request": "hubspot.refresh_access_token#1",
//!     "status": 200,
//!     "body": { "access_token": "dry-run-token", "expires_in": 1800 } },
//!   { "url": "https://api.example.com/v1/me", "method": "GET", "status": 401 }
//! ]
//! ```
//!
//! An answer matches a request by node, `SERVICE.ACTION#N` (the N-th
//! `web_request` of the action, from 1), or by URL (with or without its
//! query) and optionally method. The first match wins. `body` is sent as
//! JSON, or as is when it is a string; `status` defaults to 200.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::net::http;

/// The largest mock file read.
const MAX_SIZE: u64 = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    request: Option<String>,
    url: Option<String>,
    method: Option<String>,
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<serde_json::Value>,
}

fn ok() -> u16 {
    200
}

#[derive(Deserialize)]
#[serde(untagged)]
enum File {
    List(Vec<Answer>),
    Object { responses: Vec<Answer> },
}

/// The simulated answers of a mock file.
#[derive(Debug, Default)]
pub struct Mocks {
    answers: Vec<Answer>,
}

impl Mocks {
    /// Reads a mock file; the error says what is wrong, in a sentence.
    pub fn load(path: &Path) -> Result<Mocks, String> {
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
            .len();
        if size > MAX_SIZE {
            return Err(format!("`{}` is larger than 16 MiB", path.display()));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        Mocks::parse(&text).map_err(|problem| format!("`{}`: {problem}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Mocks, String> {
        let file: File = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a list of answers ({} at line {}, column {})",
                e.classify_text(),
                e.line(),
                e.column()
            )
        })?;
        let answers = match file {
            File::List(answers) | File::Object { responses: answers } => answers,
        };
        for (i, answer) in answers.iter().enumerate() {
            if answer.request.is_none() && answer.url.is_none() {
                return Err(format!(
                    "answer {} says neither `request` (SERVICE.ACTION#N) nor `url`",
                    i + 1
                ));
            }
            if !(100..=599).contains(&answer.status) {
                return Err(format!(
                    "answer {} has status {}, not 100 to 599",
                    i + 1,
                    answer.status
                ));
            }
            if let Some(url) = &answer.url {
                url::Url::parse(url)
                    .map_err(|e| format!("answer {}: `{url}` is not a URL: {e}", i + 1))?;
            }
        }
        Ok(Mocks { answers })
    }

    /// The answer for a request: by node (`SERVICE.ACTION#N`), or by URL
    /// and method.
    pub fn answer(&self, node: &str, method: &str, url: &url::Url) -> Option<http::Response> {
        let mut bare = url.clone();
        bare.set_query(None);
        let answer = self.answers.iter().find(|a| {
            let by_node = a.request.as_deref() == Some(node);
            let by_url = a.url.as_ref().is_some_and(|u| {
                url::Url::parse(u).is_ok_and(|u| u == *url || u == bare)
                    && a.method
                        .as_deref()
                        .is_none_or(|m| m.eq_ignore_ascii_case(method))
            });
            by_node || by_url
        })?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &answer.headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        let body = match &answer.body {
            None => Vec::new(),
            Some(serde_json::Value::String(text)) => text.as_bytes().to_vec(),
            Some(json) => {
                headers.entry(reqwest::header::CONTENT_TYPE).or_insert(
                    reqwest::header::HeaderValue::from_static("application/json"),
                );
                json.to_string().into_bytes()
            }
        };
        Some(http::Response {
            status: reqwest::StatusCode::from_u16(answer.status).ok()?,
            headers,
            body,
            attempts: 0,
            elapsed: std::time::Duration::ZERO,
            retries: Vec::new(),
        })
    }
}

trait ClassifyText {
    fn classify_text(&self) -> &'static str;
}

impl ClassifyText for serde_json::Error {
    fn classify_text(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "an unexpected field or value",
            serde_json::error::Category::Eof => "the JSON ends early",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_node_then_by_url_and_method() {
        let mocks = Mocks::parse(
            r#"[
                {"request": "api.refresh#1", "body": {"access_token": "t"}},
                {"url": "https://x.example/me", "method": "GET", "status": 401, "body": "no"}
            ]"#,
        )
        .unwrap();
        let url = url::Url::parse("https://x.example/token").unwrap();
        let by_node = mocks.answer("api.refresh#1", "POST", &url).unwrap();
        assert_eq!(by_node.status.as_u16(), 200);
        assert_eq!(by_node.body, br#"{"access_token":"t"}"#);
        let me = url::Url::parse("https://x.example/me?x=1").unwrap();
        assert_eq!(
            mocks
                .answer("api.other#1", "GET", &me)
                .unwrap()
                .status
                .as_u16(),
            401
        );
        assert!(mocks.answer("api.other#1", "POST", &me).is_none());
    }

    #[test]
    fn a_malformed_file_says_what_is_wrong() {
        assert!(
            Mocks::parse(r#"[{"status": 200}]"#)
                .unwrap_err()
                .contains("neither")
        );
        assert!(
            Mocks::parse(r#"[{"url": "https://x", "status": 9}]"#)
                .unwrap_err()
                .contains("status 9")
        );
        assert!(
            Mocks::parse(r#"{"nope": 1}"#)
                .unwrap_err()
                .contains("not a list")
        );
    }
}
