//! `OPTIONS` on every API view, answered as DRF's `SimpleMetadata` does:
//! the view's `name` and `description`, the media types it `renders` and
//! `parses`, and for a view taking POST or PUT an `actions` map describing
//! each field of its serializer. As in DRF, an action is listed only when
//! the caller could make that request: POST when the view's permissions
//! allow it, PUT when they do and the object exists and is the caller's.
//! `OPTIONS` itself needs what a GET of the view needs (a login for
//! comments, staff for users).
//!
//! The field tables ([`Field`]) live beside each resource's handlers and
//! also give the OpenAPI document its request schemas, so the two
//! descriptions cannot drift apart.

use axum::extract::{RawPathParams, State};
use axum::http::header::ALLOW;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::{AuthUser, MaybeAuthUser};
use crate::db::{comments, products};
use crate::error::ApiError;
use crate::state::AppState;

/// What a serializer field holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    String,
    Email,
    Slug,
    Uuid,
    Integer,
    DateTime,
    /// A primary key of another object (`PrimaryKeyRelatedField`).
    Related,
    /// A list of primary keys (`many=True`).
    RelatedMany,
    /// A nested serializer, with its own fields.
    Nested(&'static [Field]),
}

impl Kind {
    /// DRF's `SimpleMetadata.label_lookup` name for the field class.
    fn drf_type(self) -> &'static str {
        match self {
            Kind::String | Kind::Uuid => "string",
            Kind::Email => "email",
            Kind::Slug => "slug",
            Kind::Integer => "integer",
            Kind::DateTime => "datetime",
            Kind::Related | Kind::RelatedMany => "field",
            Kind::Nested(_) => "nested object",
        }
    }
}

/// One serializer field: what the API accepts and returns under `name`.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub read_only: bool,
    pub nullable: bool,
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub min_value: Option<i64>,
    pub max_value: Option<i64>,
}

impl Field {
    /// An optional, writable, non-null field without limits.
    pub const fn new(name: &'static str, kind: Kind) -> Field {
        Field {
            name,
            kind,
            required: false,
            read_only: false,
            nullable: false,
            min_length: None,
            max_length: None,
            min_value: None,
            max_value: None,
        }
    }

    pub const fn required(self) -> Field {
        Field {
            required: true,
            ..self
        }
    }

    /// Output only (DRF makes a read-only field never required).
    pub const fn read_only(self) -> Field {
        Field {
            read_only: true,
            required: false,
            ..self
        }
    }

    pub const fn nullable(self) -> Field {
        Field {
            nullable: true,
            ..self
        }
    }

    pub const fn min_length(self, n: u32) -> Field {
        Field {
            min_length: Some(n),
            ..self
        }
    }

    pub const fn max_length(self, n: u32) -> Field {
        Field {
            max_length: Some(n),
            ..self
        }
    }

    pub const fn range(self, min: i64, max: i64) -> Field {
        Field {
            min_value: Some(min),
            max_value: Some(max),
            ..self
        }
    }

    /// Django's default label: the name with spaces, first letter upper
    /// case; `id` is `ID` (the verbose name of Django's automatic key).
    fn label(&self) -> String {
        if self.name == "id" {
            return "ID".to_owned();
        }
        let text = self.name.replace('_', " ");
        let mut chars = text.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_uppercase().chain(chars).collect()
        })
    }

    /// `SimpleMetadata.get_field_info`.
    fn info(&self) -> Value {
        let mut info = Map::new();
        info.insert("type".into(), self.kind.drf_type().into());
        info.insert("required".into(), self.required.into());
        info.insert("read_only".into(), self.read_only.into());
        info.insert("label".into(), self.label().into());
        let limits = [
            ("min_length", self.min_length.map(i64::from)),
            ("max_length", self.max_length.map(i64::from)),
            ("min_value", self.min_value),
            ("max_value", self.max_value),
        ];
        for (key, value) in limits {
            if let Some(value) = value {
                info.insert(key.into(), value.into());
            }
        }
        if let Kind::Nested(children) = self.kind {
            info.insert("children".into(), serializer_info(children));
        }
        Value::Object(info)
    }
}

/// `SimpleMetadata.get_serializer_info`: each field's description by name.
fn serializer_info(fields: &[Field]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|f| (f.name.to_owned(), f.info()))
            .collect(),
    )
}

/// The permission a view checks before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `AllowAny`.
    Anyone,
    /// Reads for anyone, writes need a login (`IsAuthenticatedOrReadOnly`).
    LoggedInToWrite,
    /// `IsAuthenticated`.
    LoggedIn,
    /// Active staff only (`IsAdminUser`).
    Staff,
}

/// Whose object a PUT changes: the PUT action is shown to its owner only.
#[derive(Debug, Clone, Copy)]
pub enum Owned {
    Product,
    Comment,
}

/// What `OPTIONS` says about one view.
#[derive(Debug)]
pub struct View {
    /// DRF's `get_view_name()`: the class name in words (`Product List`).
    pub name: &'static str,
    /// The view's docstring (simplejwt's own for the token views).
    pub description: &'static str,
    /// DRF's `Allow` header: the view's methods, in DRF's order.
    pub allow: &'static str,
    pub access: Access,
    /// The serializer of a POST, for views that take one.
    pub post: Option<&'static [Field]>,
    /// The serializer of a PUT and the kind of object it changes.
    pub put: Option<(Owned, &'static [Field])>,
}

/// The `OPTIONS` route of `view` and its 405 for every method it has no
/// handler for (with `view.allow`, so a 405 and an `OPTIONS` name the same
/// methods in DRF's order), to merge into the view's method router.
pub fn options(view: &'static View) -> MethodRouter<AppState> {
    let not_allowed = move |method: Method| async move {
        ApiError::MethodNotAllowed {
            method: method.to_string(),
            allow: Some(HeaderValue::from_static(view.allow)),
        }
    };
    axum::routing::options(
        move |State(state): State<AppState>,
              MaybeAuthUser(user): MaybeAuthUser,
              params: RawPathParams| async move {
            // A path id that is not a number names no object: no PUT action
            // (DRF's `get_object()` 404 is swallowed here), but still a 200.
            let id = params
                .iter()
                .find(|(name, _)| *name == "id")
                .and_then(|(_, value)| value.parse::<i64>().ok());
            describe(&state, user, id, view).await
        },
    )
    .fallback(not_allowed)
}

/// `SimpleMetadata.determine_metadata` for `view` as `user` sees it.
async fn describe(
    state: &AppState,
    user: Option<AuthUser>,
    id: Option<i64>,
    view: &View,
) -> Result<Response, ApiError> {
    match view.access {
        Access::Anyone | Access::LoggedInToWrite => {}
        Access::LoggedIn => {
            user.ok_or(ApiError::NotAuthenticated)?;
        }
        Access::Staff => {
            super::users::require_staff(state, user.ok_or(ApiError::NotAuthenticated)?).await?
        }
    }
    let may_write = view.access == Access::Anyone || user.is_some();
    let mut actions = Map::new();
    if let Some(fields) = view.post.filter(|_| may_write) {
        actions.insert("POST".into(), serializer_info(fields));
    }
    if let (Some((owned, fields)), Some(user), Some(id)) = (view.put, user, id) {
        let owner = match owned {
            Owned::Product => products::get(&state.db, id).await?.map(|p| p.user_id),
            Owned::Comment => comments::get(&state.db, id).await?.and_then(|c| c.user),
        };
        if owner == Some(user.user_id) {
            actions.insert("PUT".into(), serializer_info(fields));
        }
    }
    let mut body = json!({
        "name": view.name,
        "description": view.description,
        "renders": ["application/json"],
        "parses": ["application/json"],
    });
    if !actions.is_empty() {
        body["actions"] = Value::Object(actions);
    }
    Ok(([(ALLOW, HeaderValue::from_static(view.allow))], Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_info_follows_drf() {
        let f = Field::new("rating", Kind::Integer).nullable().range(1, 5);
        assert_eq!(
            f.info(),
            json!({"type": "integer", "required": false, "read_only": false,
                   "label": "Rating", "min_value": 1, "max_value": 5})
        );
        let f = Field::new("created_at", Kind::DateTime)
            .required()
            .read_only();
        assert_eq!(
            f.info(),
            json!({"type": "datetime", "required": false, "read_only": true, "label": "Created at"})
        );
        assert_eq!(Field::new("id", Kind::Integer).label(), "ID");
    }
}
