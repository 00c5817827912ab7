//! An endpoint's declared parameters, checked on every way in: `svc run
//! --param`, the query string or JSON body of `svc serve`, a schedule's
//! fixed values and a `run_service`'s arguments. One place decides what a
//! value of each type may look like.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::syntax::ast::*;

/// A parameter that is missing, unknown or of the wrong type.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamError {
    pub message: String,
    pub help: String,
}

/// Checks `given` against the contract of `endpoint` (`key` names it in
/// messages) and gives the values the run sees: each declared parameter in
/// its canonical JSON form (a duration in seconds, a list as an array),
/// defaults filled in. An endpoint without `params` takes anything, as is.
pub fn validate(
    endpoint: &EndpointDecl,
    key: &str,
    given: BTreeMap<String, Json>,
) -> Result<BTreeMap<String, Json>, ParamError> {
    let Some(declared) = &endpoint.params else {
        return Ok(given);
    };
    let names = || {
        if declared.is_empty() {
            format!("`{key}` takes no parameters")
        } else {
            format!(
                "`{key}` takes: {}",
                declared
                    .iter()
                    .map(|p| format!("{}: {}", p.name.text, p.type_name.text))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    if let Some(unknown) = given
        .keys()
        .find(|name| !declared.iter().any(|p| p.name.text == **name))
    {
        return Err(ParamError {
            message: format!("`{key}` has no parameter `{unknown}`"),
            help: names(),
        });
    }
    let mut out = BTreeMap::new();
    for param in declared {
        let Some(param_type) = param.param_type() else {
            continue;
        };
        let value = match given.get(&param.name.text) {
            Some(value) if !value.is_null() => {
                convert(value, param_type).map_err(|why| ParamError {
                    message: format!(
                        "parameter `{}` of `{key}` must be a {}: {why}",
                        param.name.text,
                        param_type.name()
                    ),
                    help: example(param_type),
                })?
            }
            _ => match &param.default {
                Some(default) => crate::check::values::constant(default).unwrap_or(Json::Null),
                None if param.optional => Json::Null,
                None => {
                    return Err(ParamError {
                        message: format!("`{key}` needs the parameter `{}`", param.name.text),
                        help: format!(
                            "give it ({}): {}",
                            param_type.name(),
                            example_of(&param.name.text, param_type)
                        ),
                    });
                }
            },
        };
        out.insert(param.name.text.clone(), value);
    }
    Ok(out)
}

/// A value in the canonical form of its type. Text (the command line, a
/// query string) is read as the type says; JSON must already be of it.
fn convert(value: &Json, param_type: ParamType) -> Result<Json, String> {
    if param_type.list {
        let items: Vec<Json> = match value {
            Json::Array(items) => items.clone(),
            // `a,b,c` from text, or a JSON array written as text.
            Json::String(text) => match serde_json::from_str::<Json>(text) {
                Ok(Json::Array(items)) => items,
                _ if text.trim().is_empty() => Vec::new(),
                _ => text
                    .split(',')
                    .map(|s| Json::String(s.trim().into()))
                    .collect(),
            },
            other => return Err(format!("a list, not a JSON {}", kind(other))),
        };
        let scalar = ParamType {
            base: param_type.base,
            list: false,
        };
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| convert(item, scalar).map_err(|why| format!("item {}: {why}", i + 1)))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array);
    }
    let text = value.as_str();
    match param_type.base {
        Type::String => match value {
            Json::String(_) => Ok(value.clone()),
            other => Err(format!("a string, not a JSON {}", kind(other))),
        },
        Type::Number => match (value, text) {
            (Json::Number(_), _) => Ok(value.clone()),
            (_, Some(text)) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(|n| crate::check::values::normal_number(Json::Number(n)))
                .ok_or_else(|| format!("`{}` is not a number", shorten(text))),
            (other, None) => Err(format!("a number, not a JSON {}", kind(other))),
        },
        Type::Bool => match (value, text.map(str::trim)) {
            (Json::Bool(_), _) => Ok(value.clone()),
            (_, Some("true")) => Ok(Json::Bool(true)),
            (_, Some("false")) => Ok(Json::Bool(false)),
            (_, Some(text)) => Err(format!("`{}` is not `true` or `false`", shorten(text))),
            (other, None) => Err(format!("a bool, not a JSON {}", kind(other))),
        },
        Type::Duration => match (value, text) {
            (Json::Number(n), _) if n.as_f64().is_some_and(|n| n >= 0.0) => Ok(value.clone()),
            (_, Some(text)) => crate::syntax::duration::parse(text.trim())
                .map(|d| {
                    crate::check::values::normal_number(Json::from(d.as_millis() as f64 / 1000.0))
                })
                .map_err(|_| format!("`{}` is not a duration such as `5m`", shorten(text))),
            (other, None) => Err(format!("a duration, not a JSON {}", kind(other))),
        },
        // A JSON parameter: given JSON as is; text that parses as JSON is
        // that value, other text a string.
        Type::Json => Ok(match text {
            Some(text) => serde_json::from_str(text).unwrap_or_else(|_| value.clone()),
            None => value.clone(),
        }),
        Type::Time => Err("a time cannot be a parameter".into()),
    }
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn example(param_type: ParamType) -> String {
    let one = match param_type.base {
        Type::String => "`text`",
        Type::Number => "`42`",
        Type::Bool => "`true` or `false`",
        Type::Duration => "`90s`, `5m`, or seconds",
        _ => "any JSON value",
    };
    if param_type.list {
        format!("a list: `a,b,c` or a JSON array; each item {one}")
    } else {
        format!("for example {one}")
    }
}

fn example_of(name: &str, param_type: ParamType) -> String {
    let value = match (param_type.list, param_type.base) {
        (true, _) => "a,b",
        (_, Type::Number) => "42",
        (_, Type::Bool) => "true",
        (_, Type::Duration) => "5m",
        _ => "text",
    };
    format!("`--param {name}={value}`, or `{name}` in the query string or JSON body")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint(source: &str) -> EndpointDecl {
        let text = format!(
            "service s {{ action a {{ log \"x\" }} endpoint e {{ process a params {{ {source} }} }} }}"
        );
        let (program, diagnostics) = crate::syntax::parse_file(crate::source::FileId(0), &text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        program.services[0].endpoints[0].clone()
    }

    fn given(pairs: &[(&str, Json)]) -> BTreeMap<String, Json> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn text_is_read_as_the_declared_type_and_defaults_fill_in() {
        let e = endpoint(
            "page: number = 1  since: duration = 1h  tags: list<string>?  dry: bool  raw: json?",
        );
        let out = validate(
            &e,
            "s.e",
            given(&[("dry", json!("true")), ("tags", json!("a, b"))]),
        )
        .unwrap();
        assert_eq!(
            out,
            given(&[
                ("page", json!(1)),
                ("since", json!(3600)),
                ("tags", json!(["a", "b"])),
                ("dry", json!(true)),
                ("raw", Json::Null),
            ])
        );
        let out = validate(
            &e,
            "s.e",
            given(&[
                ("dry", json!(false)),
                ("page", json!("2.5")),
                ("since", json!("90s")),
                ("raw", json!("{\"a\":1}")),
            ]),
        )
        .unwrap();
        assert_eq!(out["page"], json!(2.5));
        assert_eq!(out["since"], json!(90));
        assert_eq!(out["raw"], json!({"a": 1}));
    }

    #[test]
    fn missing_unknown_and_mistyped_parameters_are_named() {
        let e = endpoint("page: number  tags: list<number>?");
        let missing = validate(&e, "s.e", BTreeMap::new()).unwrap_err();
        assert!(
            missing.message.contains("needs the parameter `page`"),
            "{missing:?}"
        );
        let unknown =
            validate(&e, "s.e", given(&[("page", json!(1)), ("pgae", json!(1))])).unwrap_err();
        assert!(
            unknown.message.contains("no parameter `pgae`"),
            "{unknown:?}"
        );
        assert!(unknown.help.contains("page: number"), "{unknown:?}");
        let wrong = validate(&e, "s.e", given(&[("page", json!("ten"))])).unwrap_err();
        assert!(
            wrong.message.contains("`page`") && wrong.message.contains("not a number"),
            "{wrong:?}"
        );
        let json_wrong = validate(&e, "s.e", given(&[("page", json!(true))])).unwrap_err();
        assert!(
            json_wrong.message.contains("not a JSON boolean"),
            "{json_wrong:?}"
        );
        let item = validate(
            &e,
            "s.e",
            given(&[("page", json!(1)), ("tags", json!([1, "x"]))]),
        )
        .unwrap_err();
        assert!(item.message.contains("item 2"), "{item:?}");
    }

    #[test]
    fn an_endpoint_without_a_contract_takes_anything() {
        let text = "service s { action a { log \"x\" } endpoint e { process a } }";
        let (program, _) = crate::syntax::parse_file(crate::source::FileId(0), text);
        let e = &program.services[0].endpoints[0];
        let anything = given(&[("whatever", json!("x"))]);
        assert_eq!(validate(e, "s.e", anything.clone()), Ok(anything));
    }
}
