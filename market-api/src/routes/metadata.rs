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
use crate::fields::{Field, Kind};
use crate::state::AppState;

/// DRF's `SimpleMetadata.label_lookup` name for the field class.
fn drf_type(kind: Kind) -> &'static str {
    match kind {
        Kind::String | Kind::Uuid => "string",
        Kind::Email => "email",
        Kind::Slug => "slug",
        Kind::Integer => "integer",
        Kind::DateTime => "datetime",
        Kind::Related | Kind::RelatedMany => "field",
        Kind::Nested(_) => "nested object",
    }
}

/// `SimpleMetadata.get_field_info`.
fn field_info(field: &Field) -> Value {
    let mut info = Map::new();
    info.insert("type".into(), drf_type(field.kind).into());
    info.insert("required".into(), field.required.into());
    info.insert("read_only".into(), field.read_only.into());
    info.insert("label".into(), field.label().into());
    let limits = [
        ("min_length", field.min_length.map(i64::from)),
        ("max_length", field.max_length.map(i64::from)),
        ("min_value", field.min_value),
        ("max_value", field.max_value),
    ];
    for (key, value) in limits {
        if let Some(value) = value {
            info.insert(key.into(), value.into());
        }
    }
    if let Kind::Nested(children) = field.kind {
        info.insert("children".into(), serializer_info(children));
    }
    Value::Object(info)
}

/// `SimpleMetadata.get_serializer_info`: each field's description by name.
fn serializer_info(fields: &[Field]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|f| (f.name.to_owned(), field_info(f)))
            .collect(),
    )
}

/// The permission a view checks before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `AllowAny`.
    Anyone,
    /// `IsAuthenticated`.
    LoggedIn,
    /// Active staff only (`IsAdminUser`).
    Staff,
}

/// Whose object a PUT changes: the PUT action is shown to its owner only.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owned {
    Product,
    Comment,
}

/// What `OPTIONS` says about one view.
#[derive(Debug)]
pub(crate) struct View {
    /// DRF's `get_view_name()`: the class name in words (`Product List`).
    pub(crate) name: &'static str,
    /// The view's docstring (simplejwt's own for the token views).
    pub(crate) description: &'static str,
    /// DRF's `Allow` header: the view's methods, in DRF's order.
    pub(crate) allow: &'static str,
    pub(crate) access: Access,
    /// The serializer of a POST, for views that take one.
    pub(crate) post: Option<&'static [Field]>,
    /// The serializer of a PUT and the kind of object it changes.
    pub(crate) put: Option<(Owned, &'static [Field])>,
}

/// The `OPTIONS` route of `view` and its 405 for every method it has no
/// handler for (with `view.allow`, so a 405 and an `OPTIONS` name the same
/// methods in DRF's order), to merge into the view's method router.
///
/// As in DRF, whose `initial()` checks permissions before `dispatch` looks
/// for the method's handler, a caller who may not use the view at all gets
/// its 401 or 403 rather than the 405.
pub(crate) fn options(view: &'static View) -> MethodRouter<AppState> {
    let not_allowed = move |method: Method| ApiError::MethodNotAllowed {
        method: method.to_string(),
        allow: Some(HeaderValue::from_static(view.allow)),
    };
    let router = axum::routing::options(
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
    );
    if view.access == Access::Anyone {
        router.fallback(move |method: Method| async move { not_allowed(method) })
    } else {
        router.fallback(
            move |MaybeAuthUser(user): MaybeAuthUser, method: Method| async move {
                check_access(user, view.access)?;
                Err::<(), _>(not_allowed(method))
            },
        )
    }
}

/// The view's permission check: 401 without a login where one is needed,
/// 403 for a non-staff user on a staff view.
fn check_access(user: Option<AuthUser>, access: Access) -> Result<(), ApiError> {
    match access {
        Access::Anyone => Ok(()),
        Access::LoggedIn => user.map(|_| ()).ok_or(ApiError::NotAuthenticated),
        Access::Staff => user.ok_or(ApiError::NotAuthenticated)?.require_staff(),
    }
}

/// `SimpleMetadata.determine_metadata` for `view` as `user` sees it.
async fn describe(
    state: &AppState,
    user: Option<AuthUser>,
    id: Option<i64>,
    view: &View,
) -> Result<Response, ApiError> {
    check_access(user, view.access)?;
    let mut actions = Map::new();
    if let Some(fields) = view.post {
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
            field_info(&f),
            json!({"type": "integer", "required": false, "read_only": false,
                   "label": "Rating", "min_value": 1, "max_value": 5})
        );
        let f = Field::new("created_at", Kind::DateTime)
            .required()
            .read_only();
        assert_eq!(
            field_info(&f),
            json!({"type": "datetime", "required": false, "read_only": true, "label": "Created at"})
        );
    }
}
