//! The hook tools' output formats, as juju/cmd prints them: smart, yaml and json.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Smart,
    Yaml,
    Json,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "smart" => Some(Format::Smart),
            "yaml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Renders a value the way the tool would print it (trailing newline included, or nothing).
pub fn render(value: &Value, format: Format) -> String {
    match format {
        Format::Json => {
            // Go's json.Marshal: sorted keys (serde_json's map is ordered), no spaces, and
            // <, >, & escaped.
            let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
            let escaped = text
                .replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026");
            format!("{escaped}\n")
        }
        Format::Yaml => {
            if value.is_null() {
                return String::new();
            }
            yaml(value)
        }
        Format::Smart => match value {
            Value::Null => String::new(),
            Value::String(s) if s.is_empty() => String::new(),
            Value::String(s) => format!("{s}\n"),
            Value::Bool(true) => "True\n".to_owned(),
            Value::Bool(false) => "False\n".to_owned(),
            Value::Array(items) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| format!("{s}\n"))
                .collect(),
            other => yaml(other),
        },
    }
}

fn yaml(value: &Value) -> String {
    if value.as_object().is_some_and(|m| m.is_empty()) {
        return "{}\n".to_owned();
    }
    let text = serde_norway::to_string(value).unwrap_or_default();
    let trimmed = text.trim_end_matches('\n');
    format!("{trimmed}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_compact_sorted_and_escapes_html() {
        assert_eq!(
            render(&json!({"b": "<x>", "a": 1}), Format::Json),
            "{\"a\":1,\"b\":\"\\u003cx\\u003e\"}\n"
        );
        assert_eq!(render(&Value::Null, Format::Json), "null\n");
        assert_eq!(render(&json!([]), Format::Json), "[]\n");
    }

    #[test]
    fn smart_prints_strings_bare_and_nothing_for_null_or_empty() {
        assert_eq!(render(&json!("x"), Format::Smart), "x\n");
        assert_eq!(render(&json!(""), Format::Smart), "");
        assert_eq!(render(&Value::Null, Format::Smart), "");
        assert_eq!(render(&json!(true), Format::Smart), "True\n");
        assert_eq!(render(&json!(["a", "b"]), Format::Smart), "a\nb\n");
        assert_eq!(render(&json!({"k": "v"}), Format::Smart), "k: v\n");
    }

    #[test]
    fn yaml_quotes_strings_that_look_like_numbers() {
        assert_eq!(
            render(&json!({"password": "12345"}), Format::Yaml),
            "password: '12345'\n"
        );
        assert_eq!(render(&json!({}), Format::Yaml), "{}\n");
    }
}
