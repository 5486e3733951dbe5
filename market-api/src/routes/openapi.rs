//! `GET /api/v1/openapi.json`: an OpenAPI 3.0 description of the API (the
//! original served Swagger). Built once, served from memory.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{json, Value};

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
                "get": { "parameters": product_list_params, "summary": "List products", "responses": { "200": { "description": "Paginated products" }, "404": { "description": "Invalid page." } } },
                "post": op("Create a product", true, Some("ProductWrite"), ("201", "Product")),
            },
            "/api/v1/products/has-product/": { "get": {
                "summary": "Whether user `client` owns a product",
                "parameters": [{ "name": "client", "in": "query", "required": true, "schema": { "type": "integer" } }],
                "responses": { "200": { "description": "{has_product: bool}" } } } },
            "/api/v1/products/{id}/": {
                "parameters": id_param(),
                "get": op("Retrieve a product", false, None, ("200", "Product")),
                "put": op("Replace a product (owner)", true, Some("ProductWrite"), ("200", "Product")),
                "patch": op("Update a product (owner)", true, Some("ProductWrite"), ("200", "Product")),
                "delete": op("Delete a product (owner)", true, None, ("204", "Deleted")),
            },
            "/api/v1/products/comments/": {
                "get": { "parameters": page_params, "summary": "List comments", "security": [{ "bearerAuth": [] }], "responses": { "200": { "description": "Paginated comments" } } },
                "post": op("Create a comment", true, Some("CommentWrite"), ("201", "Comment")),
            },
            "/api/v1/products/comments/{id}/": {
                "parameters": id_param(),
                "get": op("Retrieve a comment", true, None, ("200", "Comment")),
                "put": op("Replace a comment (author)", true, Some("CommentWrite"), ("200", "Comment")),
                "patch": op("Update a comment (author)", true, Some("CommentWrite"), ("200", "Comment")),
                "delete": op("Delete a comment (author)", true, None, ("204", "Deleted")),
            },
            "/healthz": { "get": { "summary": "Health (database reachable)", "responses": { "200": { "description": "ok" }, "503": { "description": "database unavailable" } } } },
        },
        "components": {
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": {
                "TokenObtain": { "type": "object", "required": ["email", "password"],
                    "properties": { "email": { "type": "string" }, "password": { "type": "string" } } },
                "TokenRefresh": { "type": "object", "required": ["refresh"], "properties": { "refresh": { "type": "string" } } },
                "TokenVerify": { "type": "object", "required": ["token"], "properties": { "token": { "type": "string" } } },
                "Register": { "type": "object", "required": ["email", "password", "confirm_password"],
                    "properties": { "email": { "type": "string", "format": "email" }, "password": { "type": "string", "minLength": 6 },
                                    "confirm_password": { "type": "string" } } },
                "ProductWrite": { "type": "object", "required": ["title"],
                    "properties": { "title": { "type": "string", "maxLength": 130 }, "description": { "type": "string", "maxLength": 1500 },
                                    "tags": { "type": "string", "maxLength": 70 }, "category": { "type": "integer", "nullable": true },
                                    "votes": { "type": "array", "items": { "type": "integer" } }, "image": { "type": "string", "nullable": true },
                                    "user": { "type": "integer" } } },
                "CommentWrite": { "type": "object", "required": ["reply", "post"],
                    "properties": { "reply": { "type": "string", "maxLength": 300 }, "rating": { "type": "integer", "minimum": 1, "maximum": 5, "nullable": true },
                                    "post": { "type": "integer" } } },
            },
        },
    })
}

/// The document, serialized once.
pub async fn document() -> impl IntoResponse {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    let body = DOC.get_or_init(|| Bytes::from(build().to_string())).clone();
    ([(CONTENT_TYPE, "application/json")], body)
}
