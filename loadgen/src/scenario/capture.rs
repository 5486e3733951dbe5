//! JSONPath-lite: `$.a.b[0].c` selects a value from a JSON response.
//!
//! Only member access and array indexes are supported; that covers capturing
//! tokens and ids from API responses, which is what scenarios need.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathSeg {
    /// `.name` or `["name"]`
    Key(String),
    /// `[3]`
    Index(usize),
}

/// A compiled `$.a.b[0]` path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    segs: Vec<PathSeg>,
}

impl JsonPath {
    /// Parses `$`, `$.a`, `$.a[0].b`, `$["a b"]`.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let t = text.trim();
        let mut rest = t
            .strip_prefix('$')
            .ok_or_else(|| format!("JSON path {t:?} must start with '$'"))?;
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = &r[..end];
                if key.is_empty() {
                    return Err(format!("JSON path {t:?}: empty member name"));
                }
                segs.push(PathSeg::Key(key.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r
                    .find(']')
                    .ok_or_else(|| format!("JSON path {t:?}: missing ']'"))?;
                let inner = r[..end].trim();
                if let Some(q) = inner
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                {
                    segs.push(PathSeg::Key(q.to_string()));
                } else {
                    let i: usize = inner
                        .parse()
                        .map_err(|_| format!("JSON path {t:?}: {inner:?} is not an index"))?;
                    segs.push(PathSeg::Index(i));
                }
                rest = &r[end + 1..];
            } else {
                return Err(format!("JSON path {t:?}: unexpected {rest:?}"));
            }
        }
        Ok(JsonPath {
            text: t.to_string(),
            segs,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Selects the value, if present.
    pub fn select<'a>(&self, mut v: &'a Value) -> Option<&'a Value> {
        for seg in &self.segs {
            v = match seg {
                PathSeg::Key(k) => v.get(k.as_str())?,
                PathSeg::Index(i) => v.get(*i)?,
            };
        }
        Some(v)
    }

    /// Selects the value as text: strings as they are, anything else as JSON.
    pub fn select_string(&self, v: &Value) -> Option<String> {
        match self.select(v)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_members_and_indexes() {
        let v: Value =
            serde_json::from_str(r#"{"access":"tok","a":{"b":[{"c":1},{"c":"x"}]},"k y":2}"#)
                .unwrap();
        assert_eq!(
            JsonPath::parse("$.access").unwrap().select_string(&v),
            Some("tok".into())
        );
        assert_eq!(
            JsonPath::parse("$.a.b[1].c").unwrap().select_string(&v),
            Some("x".into())
        );
        assert_eq!(
            JsonPath::parse("$.a.b[0].c").unwrap().select_string(&v),
            Some("1".into())
        );
        assert_eq!(
            JsonPath::parse("$[\"k y\"]").unwrap().select_string(&v),
            Some("2".into())
        );
        assert_eq!(
            JsonPath::parse("$.missing").unwrap().select_string(&v),
            None
        );
    }

    #[test]
    fn rejects_bad_paths() {
        assert!(JsonPath::parse("access").is_err());
        assert!(JsonPath::parse("$.a[").is_err());
        assert!(JsonPath::parse("$.a[x]").is_err());
        assert!(JsonPath::parse("$..a").is_err());
    }
}
