//! Registration and the staff-only user endpoints.

use serde_json::json;

use super::support::{Backend, Server};

async fn register_then_login(backend: Backend) {
    let s = Server::start(backend).await;
    let body =
        json!({"email": "new@example.com", "password": "S3cret!x", "confirm_password": "S3cret!x"});
    let (st, v) = s
        .post_json("/api/v1/users/register/", None, body.clone())
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["email"], "new@example.com");
    assert!(v["id"].as_i64().unwrap() > 0);
    assert_eq!(v["image"], serde_json::Value::Null);
    assert_eq!(v.as_object().unwrap().len(), 3);
    // Active at once (the original mailed a link first).
    let (st, v) = s
        .post_json(
            "/api/v1/auth/token/",
            None,
            json!({"email": "new@example.com", "password": "S3cret!x"}),
        )
        .await;
    assert_eq!(st, 200);
    assert!(v["access"].is_string());
    // Duplicate e-mail.
    let (st, v) = s.post_json("/api/v1/users/register/", None, body).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"email": ["user with this email address already exists."]})
        )
    );
}

async fn register_validation(backend: Backend) {
    let s = Server::start(backend).await;
    let (st, v) = s
        .post_json("/api/v1/users/register/", None, json!({}))
        .await;
    assert_eq!(st, 400);
    for field in ["email", "password", "confirm_password"] {
        assert_eq!(v[field], json!(["This field is required."]), "{field}");
    }
    let (st, v) = s.post_json(
        "/api/v1/users/register/",
        None,
        json!({"email": "x@example.com", "password": "Passw0rd!", "confirm_password": "Passw0rd?"}),
    ).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"non_field_errors": ["Passwords didn't match."]})
        )
    );
    for weak in ["abc", "abcdefgh", "abc123", "abc!!!", "123!!!"] {
        let (st, v) = s
            .post_json(
                "/api/v1/users/register/",
                None,
                json!({"email": "y@example.com", "password": weak, "confirm_password": weak}),
            )
            .await;
        assert_eq!(st, 400, "{weak}");
        assert!(v["password"].is_array(), "{weak}: {v}");
    }
    let (st, v) = s.post_json(
        "/api/v1/users/register/",
        None,
        json!({"email": "not-an-email", "password": "Passw0rd!", "confirm_password": "Passw0rd!"}),
    ).await;
    assert_eq!(
        (st, v),
        (400, json!({"email": ["Enter a valid email address."]}))
    );
    let (st, v) = s
        .post_json(
            "/api/v1/users/register/",
            None,
            json!({"email": ["a"], "password": 5, "confirm_password": null}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(v["email"], json!(["Not a valid string."]));
    assert_eq!(
        v["confirm_password"],
        json!(["This field may not be null."])
    );
}

async fn user_list_is_staff_only(backend: Backend) {
    let s = Server::start(backend).await;
    assert_eq!(s.get("/api/v1/users/", None).await.status(), 401);
    let token = s.demo().await;
    let (st, v) = s.get_json("/api/v1/users/", Some(&token)).await;
    assert_eq!(
        (st, v),
        (
            403,
            json!({"detail": "You do not have permission to perform this action."})
        )
    );
    assert_eq!(s.get("/api/v1/users/1/", Some(&token)).await.status(), 403);

    s.make_demo_staff().await;
    let (st, v) = s.get_json("/api/v1/users/?page_size=2", Some(&token)).await;
    assert_eq!(st, 200);
    assert_eq!(v["count"], 4);
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    assert!(
        v["results"][0].get("password").is_none(),
        "never expose the hash"
    );
    let (st, v) = s.get_json("/api/v1/users/2/", Some(&token)).await;
    assert_eq!(st, 200);
    assert_eq!(v["email"], "other@example.com");
    assert_eq!(
        s.get("/api/v1/users/999/", Some(&token)).await.status(),
        404
    );
    assert_eq!(
        s.get("/api/v1/users/abc/", Some(&token)).await.status(),
        404
    );
}

on_both_backends!(
    register_then_login,
    register_validation,
    user_list_is_staff_only,
);
