//! `GET /api/v1/openapi.json`: an OpenAPI 3.0 description of the API (the
//! original served Swagger). Built once, served from memory. Request schemas
//! come from the same field tables as `OPTIONS` ([`super::metadata`]).

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

use super::{auth, comments, products, users};
use crate::fields::{Field, Kind};

/// The request schema of a serializer: its writable fields.
fn schema(fields: &[Field]) -> Value {
    let writable = || fields.iter().filter(|f| !f.read_only);
    let required: Vec<&str> = writable().filter(|f| f.required).map(|f| f.name).collect();
    let properties: Map<String, Value> = writable()
        .map(|f| {
            let mut p = match f.kind {
                Kind::String | Kind::Slug => json!({ "type": "string" }),
                Kind::Email => json!({ "type": "string", "format": "email" }),
                Kind::Uuid => json!({ "type": "string", "format": "uuid" }),
                Kind::DateTime => json!({ "type": "string", "format": "date-time" }),
                Kind::Integer | Kind::Related => json!({ "type": "integer" }),
                Kind::RelatedMany => json!({ "type": "array", "items": { "type": "integer" } }),
                Kind::Nested(_) => json!({ "type": "object" }),
            };
            let (min_key, max_key) = match f.kind {
                Kind::RelatedMany => ("minItems", "maxItems"),
                _ => ("minLength", "maxLength"),
            };
            let limits = [
                (min_key, f.min_length.map(i64::from)),
                (max_key, f.max_length.map(i64::from)),
                ("minimum", f.min_value),
                ("maximum", f.max_value),
            ];
            for (key, value) in limits {
                if let Some(value) = value {
                    p[key] = value.into();
                }
            }
            if f.nullable {
                p["nullable"] = true.into();
            }
            (f.name.to_owned(), p)
        })
        .collect();
    json!({ "type": "object", "required": required, "properties": properties })
}

fn op(summary: &str, secured: bool, body: Option<&str>, ok: (&str, &str)) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {
            ok.0: { "description": ok.1 },
            "400": { "description": "Validation error (per field)" },
            "401": { "description": "Not authenticated / invalid token" },
        },
    });
    if secured {
        o["security"] = json!([{ "bearerAuth": [] }]);
    }
    if let Some(schema) = body {
        o["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } },
        });
    }
    o
}

fn id_param() -> Value {
    json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } }])
}

fn build() -> Value {
    let page_params = json!([
        { "name": "page", "in": "query", "schema": { "type": "integer", "minimum": 1 } },
        { "name": "page_size", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100 } },
    ]);
    let mut product_list_params = page_params.as_array().cloned().unwrap_or_default();
    for name in ["user", "category"] {
        product_list_params
            .push(json!({ "name": name, "in": "query", "schema": { "type": "integer" } }));
    }
    for name in ["title", "tags", "search", "ordering"] {
        product_list_params
            .push(json!({ "name": name, "in": "query", "schema": { "type": "string" } }));
    }
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Market API", "version": "v1",
                  "description": "Rust port of the Django REST Market API." },
        "paths": {
            "/api/v1/auth/token/": { "post": op("Obtain a token pair", false, Some("TokenObtain"), ("200", "{refresh, access}")) },
            "/api/v1/auth/token/refresh/": { "post": op("Refresh an access token", false, Some("TokenRefresh"), ("200", "{access}")) },
            "/api/v1/auth/token/verify/": { "post": op("Verify a token", false, Some("TokenVerify"), ("200", "{}")) },
            "/api/v1/users/register/": { "post": op("Register (active at once)", false, Some("Register"), ("201", "{id, email, image}")) },
            "/api/v1/users/": { "get": op("List users (staff)", true, None, ("200", "Paginated users")) },
            "/api/v1/users/{id}/": { "parameters": id_param(), "get": op("Retrieve a user (staff)", true, None, ("200", "User")) },
            "/api/v1/products/": {
                "get": { "parameters": product_list_params, "summary": "List products", "security": [{ "bearerAuth": [] }], "responses": { "200": { "description": "Paginated products" }, "400": { "description": "Bad filter, search or page size" }, "401": { "description": "Not authenticated / invalid token" }, "404": { "description": "Invalid page." } } },
                "post": op("Create a product", true, Some("ProductWrite"), ("201", "Product")),
            },
            "/api/v1/products/has-product/": { "get": {
                "summary": "Whether user `client` owns a product",
                "parameters": [{ "name": "client", "in": "query", "required": true, "schema": { "type": "integer" } }],
                "responses": { "200": { "description": "{has_product: bool}" } } } },
            "/api/v1/products/{id}/": {
                "parameters": id_param(),
                "get": op("Retrieve a product", true, None, ("200", "Product")),
                "put": op("Update a product (owner); fields not sent keep their values", true, Some("ProductWrite"), ("200", "Product")),
                "patch": op("Partly update a product (owner)", true, Some("ProductWrite"), ("200", "Product")),
                "delete": op("Delete a product (owner)", true, None, ("204", "Deleted")),
            },
            "/api/v1/products/comments/": {
                "get": { "parameters": page_params, "summary": "List comments", "security": [{ "bearerAuth": [] }], "responses": { "200": { "description": "Paginated comments" } } },
                "post": op("Create a comment", true, Some("CommentWrite"), ("201", "Comment")),
            },
            "/api/v1/products/comments/{id}/": {
                "parameters": id_param(),
                "get": op("Retrieve a comment", true, None, ("200", "Comment")),
                "put": op("Update a comment (author); fields not sent keep their values", true, Some("CommentWrite"), ("200", "Comment")),
                "patch": op("Partly update a comment (author)", true, Some("CommentWrite"), ("200", "Comment")),
                "delete": op("Delete a comment (author)", true, None, ("204", "Deleted")),
            },
            "/healthz": { "get": { "summary": "Health (database reachable)", "responses": { "200": { "description": "ok" }, "503": { "description": "database unavailable" } } } },
        },
        "components": {
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": {
                "TokenObtain": schema(auth::OBTAIN_FIELDS),
                "TokenRefresh": schema(auth::REFRESH_FIELDS),
                "TokenVerify": schema(auth::VERIFY_FIELDS),
                "Register": schema(users::REGISTER_FIELDS),
                "ProductWrite": schema(products::FIELDS),
                "CommentWrite": schema(comments::FIELDS),
            },
        },
    })
}

/// The document, serialized once.
pub(crate) async fn document() -> impl IntoResponse {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    let body = DOC.get_or_init(|| Bytes::from(build().to_string())).clone();
    ([(CONTENT_TYPE, "application/json")], body)
}
