//! `{{var}}` and `{{rand A B}}` templates, compiled once and rendered per request.
//!
//! A template is split into literal and placeholder segments when the scenario
//! is loaded, so rendering is a single pass that appends into a reused buffer.
//! Templates without placeholders are detected (`is_static`) so the request
//! path can be parsed once and cloned for every request.

use rand::Rng;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Text copied as is.
    Literal(String),
    /// `{{name}}`: the user's variable `name` (a capture, a loop variable or a `vars` entry).
    Var(String),
    /// `{{rand A B}}`: a uniformly random integer in `A..=B`.
    Rand(i64, i64),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    segments: Vec<Segment>,
    /// Escape substituted values for a JSON string (set for JSON bodies).
    json_escape: bool,
}

/// Looks a variable up (implemented by the user's variable store).
pub trait Lookup {
    /// The current value of `name`, if set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Template {
    /// Compiles `text`; the error says what is wrong with the placeholder.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed '{{{{' in template {text:?}"))?;
            let inner = after[..close].trim();
            segments.push(parse_placeholder(inner)?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        Ok(Template {
            segments,
            json_escape: false,
        })
    }

    /// A template that is only `text` (no placeholders are interpreted).
    pub fn literal(text: &str) -> Template {
        Template {
            segments: vec![Segment::Literal(text.to_string())],
            json_escape: false,
        }
    }

    /// Marks the template as the text of a JSON document: substituted values are JSON-escaped.
    pub fn json(mut self) -> Template {
        self.json_escape = true;
        self
    }

    /// True when the template has no placeholders.
    pub fn is_static(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The variables the template reads.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// The segments (for inspection).
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Appends the rendered text to `out`. Unset variables render as the empty string.
    pub fn render_into(&self, vars: &dyn Lookup, rng: &mut impl Rng, out: &mut String) {
        for seg in &self.segments {
            match seg {
                Segment::Literal(s) => out.push_str(s),
                Segment::Var(name) => {
                    let value = vars.get(name).unwrap_or("");
                    if self.json_escape {
                        escape_json_into(value, out);
                    } else {
                        out.push_str(value);
                    }
                }
                Segment::Rand(a, b) => {
                    let n = rng.gen_range(*a..=*b);
                    out.push_str(itoa_buf(n).as_str());
                }
            }
        }
    }

    /// Renders into a new string.
    pub fn render(&self, vars: &dyn Lookup, rng: &mut impl Rng) -> String {
        let mut out = String::new();
        self.render_into(vars, rng, &mut out);
        out
    }
}

fn itoa_buf(n: i64) -> String {
    n.to_string()
}

fn parse_placeholder(inner: &str) -> Result<Segment, String> {
    let mut words = inner.split_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("rand"), Some(a), Some(b), None) => {
            let a: i64 = a
                .parse()
                .map_err(|_| format!("{{{{rand A B}}}}: {a:?} is not an integer"))?;
            let b: i64 = b
                .parse()
                .map_err(|_| format!("{{{{rand A B}}}}: {b:?} is not an integer"))?;
            if a > b {
                return Err(format!(
                    "{{{{rand {a} {b}}}}}: the lower bound is above the upper"
                ));
            }
            Ok(Segment::Rand(a, b))
        }
        (Some("rand"), ..) => Err("expected {{rand A B}} with two integers".to_string()),
        (Some(name), None, None, None) if is_ident(name) => Ok(Segment::Var(name.to_string())),
        _ => Err(format!(
            "{{{{{inner}}}}} is neither a variable name nor {{{{rand A B}}}}"
        )),
    }
}

/// True for names usable as variables: letters, digits, `_`, `-`, `.`, not starting with a digit.
pub fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn escape_json_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);
    impl Lookup for Map {
        fn get(&self, name: &str) -> Option<&str> {
            self.0.get(name).copied()
        }
    }

    #[test]
    fn renders_vars_and_rand() {
        let t = Template::parse("/p/{{id}}/x{{ rand 3 3 }}").unwrap();
        assert!(!t.is_static());
        let vars = Map(HashMap::from([("id", "7")]));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        assert_eq!(t.render(&vars, &mut rng), "/p/7/x3");
        let r = Template::parse("{{rand 1 49}}").unwrap();
        for _ in 0..100 {
            let n: i64 = r.render(&vars, &mut rng).parse().unwrap();
            assert!((1..=49).contains(&n));
        }
    }

    #[test]
    fn json_escapes_values() {
        let t = Template::parse(r#"{"a":"{{v}}"}"#).unwrap().json();
        let vars = Map(HashMap::from([("v", "q\"\\")]));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let s = t.render(&vars, &mut rng);
        assert_eq!(s, r#"{"a":"q\"\\"}"#);
        serde_json::from_str::<serde_json::Value>(&s).unwrap();
    }

    #[test]
    fn rejects_bad_placeholders() {
        assert!(Template::parse("{{").is_err());
        assert!(Template::parse("{{rand 5 1}}").is_err());
        assert!(Template::parse("{{rand x 1}}").is_err());
        assert!(Template::parse("{{two words}}").is_err());
        assert!(Template::parse("plain").unwrap().is_static());
    }
}
