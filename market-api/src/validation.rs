//! Request bodies and their validation, with Django REST Framework's
//! messages. [`JsonBody`] reads the body (413 above the limit) but parses it
//! (415 for a non-JSON content type) only when the handler asks, after
//! authentication and permission checks, in the order DRF does them.
//! [`Form`] then checks field by field and collects every message, so a
//! client sees all its mistakes at once: `{"title": ["This field is required."]}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{ApiError, FieldErrors};
use crate::fields::Field;
use crate::state::AppState;

/// A JSON request body, read but not yet parsed.
#[derive(Debug)]
pub(crate) struct JsonBody {
    bytes: Bytes,
    /// The `Content-Type` header as sent (`None` without one), checked only
    /// when the body is parsed.
    content_type: Option<String>,
}

fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Whether DRF's `JSONParser` takes this `Content-Type` (parameters such as
/// `charset` aside).
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.body_limit;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::PayloadTooLarge);
        }
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|ct| ct.to_str().unwrap_or("").to_owned());
        match axum::body::to_bytes(req.into_body(), limit).await {
            Ok(bytes) => Ok(JsonBody {
                bytes,
                content_type,
            }),
            Err(e) => {
                let inner = e.into_inner();
                if is_length_limit(&*inner) {
                    Err(ApiError::PayloadTooLarge)
                } else {
                    Err(ApiError::BadRequest(
                        "Could not read the request body.".into(),
                    ))
                }
            }
        }
    }
}

/// Python's name for a JSON value's type, as DRF's messages use it.
pub(crate) fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

impl JsonBody {
    /// The body as a JSON object. As in DRF, an empty body is an empty object
    /// whatever its content type, and any other body needs a JSON
    /// `Content-Type`: without one it is a 415 `Unsupported media type ""`.
    /// Handlers call this after their permission checks, so a 403 or 404
    /// comes before a 415, in DRF's order.
    pub(crate) fn parse(&self) -> Result<Map<String, Value>, ApiError> {
        if self.bytes.is_empty() {
            return Ok(Map::new());
        }
        let content_type = self.content_type.as_deref().unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::UnsupportedMediaType(content_type.to_owned()));
        }
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&self.bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(ApiError::field(
                "non_field_errors",
                format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    py_type(&other)
                ),
            )),
            Err(e) => Err(ApiError::JsonParse(e.to_string())),
        }
    }
}

/// Field-by-field validation of one JSON object, each rule read from the
/// field's [`Field`] entry in its resource's table.
pub(crate) struct Form<'a> {
    data: &'a Map<String, Value>,
    errors: FieldErrors,
    /// PATCH: missing fields are not errors.
    partial: bool,
}

const REQUIRED: &str = "This field is required.";
const NOT_NULL: &str = "This field may not be null.";

/// How a nullable field was given: absent, `null`, or a value.
pub(crate) type Nullable<T> = Option<Option<T>>;

impl<'a> Form<'a> {
    pub(crate) fn new(data: &'a Map<String, Value>, partial: bool) -> Self {
        Form {
            data,
            errors: FieldErrors::new(),
            partial,
        }
    }

    /// Records a message for `name`.
    pub(crate) fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors
            .entry(name.to_owned())
            .or_default()
            .push(message.into());
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `Err(400)` with every message collected so far, if any.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }

    /// The raw value of `field`; a missing required field is an error
    /// (except for PATCH).
    pub(crate) fn get(&mut self, field: &Field) -> Option<&'a Value> {
        let value = self.data.get(field.name);
        if value.is_none() && field.required && !self.partial {
            self.error(field.name, REQUIRED);
        }
        value
    }

    /// A string field that may not be `null` (see [`Form::nullable_string`]).
    pub(crate) fn string(&mut self, field: &Field) -> Option<String> {
        match self.nullable_string(field) {
            Some(Some(s)) => Some(s),
            Some(None) => {
                self.error(field.name, NOT_NULL);
                None
            }
            None => None,
        }
    }

    /// A string (numbers are accepted and turned into text, as DRF does),
    /// trimmed, within the field's length; `null` passes through as
    /// `Some(None)` for the caller to accept or refuse.
    pub(crate) fn nullable_string(&mut self, field: &Field) -> Nullable<String> {
        let name = field.name;
        let value = self.get(field)?;
        let text = match value {
            Value::Null => return Some(None),
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => {
                self.error(name, "Not a valid string.");
                return None;
            }
        };
        if text.is_empty() && !field.allow_blank {
            self.error(name, "This field may not be blank.");
            return None;
        }
        // DRF runs every validator of a CharField and reports each failure.
        let mut valid = true;
        let max = field.cap();
        if text.chars().nth(max).is_some() {
            self.error(
                name,
                format!("Ensure this field has no more than {max} characters."),
            );
            valid = false;
        }
        if text.contains('\0') {
            self.error(name, "Null characters are not allowed.");
            valid = false;
        }
        valid.then_some(Some(text))
    }

    /// An integer within the field's range (numeric strings accepted);
    /// `null` only for a nullable field.
    pub(crate) fn integer(&mut self, field: &Field) -> Nullable<i64> {
        let name = field.name;
        let value = self.get(field)?;
        let n = match value {
            Value::Null if field.nullable => return Some(None),
            Value::Null => {
                self.error(name, NOT_NULL);
                return None;
            }
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let Some(n) = n else {
            self.error(name, "A valid integer is required.");
            return None;
        };
        if let Some(min) = field.min_value.filter(|&min| n < min) {
            self.error(
                name,
                format!("Ensure this value is greater than or equal to {min}."),
            );
            return None;
        }
        if let Some(max) = field.max_value.filter(|&max| n > max) {
            self.error(
                name,
                format!("Ensure this value is less than or equal to {max}."),
            );
            return None;
        }
        Some(Some(n))
    }

    /// DRF's `PrimaryKeyRelatedField`: an integer, or a string Python's
    /// `int()` reads as one; anything else is an "Incorrect type" (whether the
    /// object exists is the caller's check).
    fn pk_value(v: &Value) -> Result<i64, String> {
        let id = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        id.ok_or_else(|| {
            format!(
                "Incorrect type. Expected pk value, received {}.",
                py_type(v)
            )
        })
    }

    /// A primary key of a related object (existence is checked later);
    /// `null` only for a nullable field.
    pub(crate) fn pk(&mut self, field: &Field) -> Nullable<i64> {
        let value = self.get(field)?;
        if value.is_null() {
            if field.nullable {
                return Some(None);
            }
            self.error(field.name, NOT_NULL);
            return None;
        }
        match Self::pk_value(value) {
            Ok(id) => Some(Some(id)),
            Err(msg) => {
                self.error(field.name, msg);
                None
            }
        }
    }

    /// A list of primary keys, at most the field's `max_length` of them
    /// (checked first, so an oversized list costs nothing more), duplicates
    /// removed with the first occurrence's order kept, in linear time.
    pub(crate) fn pk_list(&mut self, field: &Field) -> Option<Vec<i64>> {
        let name = field.name;
        let value = self.get(field)?;
        let Value::Array(items) = value else {
            self.error(
                name,
                format!(
                    "Expected a list of items but got type \"{}\".",
                    py_type(value)
                ),
            );
            return None;
        };
        let max = field.cap();
        if items.len() > max {
            self.error(
                name,
                format!("Ensure this field has no more than {max} elements."),
            );
            return None;
        }
        let mut seen = HashSet::with_capacity(items.len());
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            match Self::pk_value(item) {
                Ok(id) if seen.insert(id) => ids.push(id),
                Ok(_) => {}
                Err(msg) => {
                    self.error(name, msg);
                    return None;
                }
            }
        }
        Some(ids)
    }
}

/// A plausible e-mail address (Django's validator, simplified).
pub(crate) fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.contains('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
}

/// At least 6 characters with a letter, a digit and a special character.
pub(crate) fn strong_password(password: &str) -> bool {
    password.chars().count() >= 6
        && password.chars().any(char::is_alphabetic)
        && password.chars().any(|c| c.is_ascii_digit())
        && password
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::Kind;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    const TITLE: Field = Field::new("title", Kind::String).required().max_length(130);
    const REPLY: Field = Field::new("reply", Kind::String).required().max_length(300);
    const MISSING: Field = Field::new("missing", Kind::String)
        .required()
        .max_length(10);
    const RATING: Field = Field::new("rating", Kind::Integer).nullable().range(1, 5);
    const VOTES: Field = Field::new("votes", Kind::RelatedMany).max_length(4);
    const CATEGORY: Field = Field::new("category", Kind::Related).nullable();
    const POST: Field = Field::new("post", Kind::Related).required();

    #[test]
    fn required_and_types() {
        let data = obj(json!({"title": 5, "rating": "x", "votes": "1", "category": true}));
        let mut f = Form::new(&data, false);
        assert_eq!(f.string(&TITLE), Some("5".into()));
        assert!(f.string(&MISSING).is_none());
        assert!(f.integer(&RATING).is_none());
        assert!(f.pk_list(&VOTES).is_none());
        assert!(f.pk(&CATEGORY).is_none());
        let Err(ApiError::Validation(errors)) = f.finish() else {
            panic!("expected errors")
        };
        assert_eq!(errors["missing"], vec![REQUIRED]);
        assert_eq!(errors["rating"], vec!["A valid integer is required."]);
        assert_eq!(
            errors["votes"],
            vec!["Expected a list of items but got type \"str\"."]
        );
        assert_eq!(
            errors["category"],
            vec!["Incorrect type. Expected pk value, received bool."]
        );
    }

    #[test]
    fn partial_skips_missing_and_limits_apply() {
        let data = obj(json!({"reply": "  ", "rating": 9, "title": "x".repeat(131)}));
        let mut f = Form::new(&data, true);
        assert!(f.string(&MISSING).is_none());
        assert!(f.string(&REPLY).is_none());
        assert!(f.integer(&RATING).is_none());
        assert!(f.string(&TITLE).is_none());
        let Err(ApiError::Validation(errors)) = f.finish() else {
            panic!("expected errors")
        };
        assert!(!errors.contains_key("missing"));
        assert_eq!(errors["reply"], vec!["This field may not be blank."]);
        assert_eq!(
            errors["rating"],
            vec!["Ensure this value is less than or equal to 5."]
        );
        assert_eq!(
            errors["title"],
            vec!["Ensure this field has no more than 130 characters."]
        );
    }

    #[test]
    fn pks_nul_characters_and_collected_messages() {
        let data = obj(json!({
            "category": "x", "post": " 7 ", "votes": [1, "2", "y"],
            "title": format!("{}\0", "x".repeat(130)), "reply": "a\0b",
        }));
        let mut f = Form::new(&data, false);
        assert!(f.pk(&CATEGORY).is_none());
        assert_eq!(f.pk(&POST), Some(Some(7)));
        assert!(f.pk_list(&VOTES).is_none());
        assert!(f.string(&TITLE).is_none());
        assert!(f.string(&REPLY).is_none());
        let Err(ApiError::Validation(errors)) = f.finish() else {
            panic!("expected errors")
        };
        assert_eq!(
            errors["category"],
            vec!["Incorrect type. Expected pk value, received str."]
        );
        assert_eq!(
            errors["votes"],
            vec!["Incorrect type. Expected pk value, received str."]
        );
        assert_eq!(
            errors["title"],
            vec![
                "Ensure this field has no more than 130 characters.",
                "Null characters are not allowed."
            ]
        );
        assert_eq!(errors["reply"], vec!["Null characters are not allowed."]);
    }

    #[test]
    fn pk_lists_are_capped_and_deduplicated_in_order() {
        let data = obj(json!({"votes": [3, 1, "3", 1]}));
        let mut f = Form::new(&data, false);
        assert_eq!(f.pk_list(&VOTES), Some(vec![3, 1]));
        let data = obj(json!({"votes": [1, 2, 3, 4, 5]}));
        let mut f = Form::new(&data, false);
        assert!(f.pk_list(&VOTES).is_none());
        let Err(ApiError::Validation(errors)) = f.finish() else {
            panic!("expected errors")
        };
        assert_eq!(
            errors["votes"],
            vec!["Ensure this field has no more than 4 elements."]
        );
    }

    #[test]
    fn content_type_is_checked_only_for_a_non_empty_body() {
        let body = |bytes: &'static str, ct: Option<&str>| JsonBody {
            bytes: Bytes::from_static(bytes.as_bytes()),
            content_type: ct.map(str::to_owned),
        };
        assert_eq!(body("", None).parse().unwrap(), Map::new());
        assert_eq!(body("", Some("text/plain")).parse().unwrap(), Map::new());
        for (ct, shown) in [(None, ""), (Some("text/plain"), "text/plain")] {
            let Err(ApiError::UnsupportedMediaType(got)) = body("{}", ct).parse() else {
                panic!("{ct:?}: expected a 415")
            };
            assert_eq!(got, shown);
        }
        let ok = body(r#"{"a":1}"#, Some("application/json; charset=utf-8"));
        assert_eq!(ok.parse().unwrap()["a"], 1);
    }

    #[test]
    fn emails_and_passwords() {
        assert!(valid_email("demo@example.com"));
        assert!(!valid_email("demo@example"));
        assert!(!valid_email("no-at.example.com"));
        assert!(!valid_email("a b@example.com"));
        assert!(strong_password("Passw0rd!"));
        assert!(!strong_password("Pa0!"));
        assert!(!strong_password("Password!"));
        assert!(!strong_password("Passw0rd"));
    }
}
