//! `OPTIONS`: DRF's metadata for every API view, its `actions` shown only to
//! callers allowed to act, and an `Allow` that matches what is routed.

use reqwest::Method;
use serde_json::{json, Value};

use super::support::{json, Backend, Server};

/// Every API view, with a path that names an existing object.
const VIEWS: &[&str] = &[
    "/api/v1/auth/token/",
    "/api/v1/auth/token/refresh/",
    "/api/v1/auth/token/verify/",
    "/api/v1/users/",
    "/api/v1/users/register/",
    "/api/v1/users/1/",
    "/api/v1/products/",
    "/api/v1/products/has-product/",
    "/api/v1/products/1/",
    "/api/v1/products/comments/",
    "/api/v1/products/comments/1/",
];

/// `OPTIONS path`: status, `Allow` header and JSON body.
async fn options(s: &Server, path: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let res = s.send(Method::OPTIONS, path, token, None).await;
    let allow = res
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    let (st, v) = json(res).await;
    (st, allow, v)
}

/// The field names an action describes.
fn names(action: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = action
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

async fn metadata_and_actions_follow_drf(backend: Backend) {
    let s = Server::start(backend).await;
    let demo = s.demo().await;
    let other = s.other().await;

    // Anonymous: refused, as a GET is (reads need a login, as in the original).
    let (st, _, v) = options(&s, "/api/v1/products/", None).await;
    assert_eq!(
        (st, v),
        (
            401,
            json!({"detail": "Authentication credentials were not provided."})
        )
    );
    // Logged in: the description and the POST serializer, field by field.
    let (st, allow, v) = options(&s, "/api/v1/products/", Some(&demo)).await;
    assert_eq!(st, 200);
    assert_eq!(allow.as_deref(), Some("GET, POST, HEAD, OPTIONS"));
    assert_eq!(v["name"], "Product List");
    assert_eq!(
        v["description"],
        "Products: logged-in users read the list; a user creates one and owns it."
    );
    let post = &v["actions"]["POST"];
    assert_eq!(
        names(post),
        [
            "category",
            "description",
            "id",
            "image",
            "product_id",
            "slug",
            "tags",
            "title",
            "user",
            "views",
            "votes",
            "votes_count"
        ]
    );
    assert_eq!(
        post["title"],
        json!({"type": "string", "required": true, "read_only": false, "label": "Title", "max_length": 130})
    );
    assert_eq!(
        post["id"],
        json!({"type": "integer", "required": false, "read_only": true, "label": "ID"})
    );
    assert_eq!(
        post["votes"],
        json!({"type": "field", "required": false, "read_only": false, "label": "Votes",
               "max_length": 1000})
    );
    assert_eq!(post["user"]["type"], "nested object");
    assert_eq!(post["user"]["children"]["first_name"]["read_only"], true);
    assert!(v["actions"].get("PUT").is_none());

    // PUT is shown to the owner only; a missing or non-numeric id is still a 200.
    let (st, allow, v) = options(&s, "/api/v1/products/1/", Some(&demo)).await;
    assert_eq!(st, 200);
    assert_eq!(
        allow.as_deref(),
        Some("GET, PUT, PATCH, DELETE, HEAD, OPTIONS")
    );
    assert_eq!(v["name"], "Product Instance");
    assert_eq!(names(&v["actions"]["PUT"]), names(post));
    for (path, token) in [
        ("/api/v1/products/1/", Some(other.as_str())),
        ("/api/v1/products/9999/", Some(demo.as_str())),
        ("/api/v1/products/abc/", Some(demo.as_str())),
    ] {
        let (st, _, v) = options(&s, path, token).await;
        assert_eq!(st, 200, "{path}");
        assert!(v.get("actions").is_none(), "{path} {token:?}: {v}");
    }

    // Comments need a login, even for OPTIONS; the author sees PUT.
    let (st, _, v) = options(&s, "/api/v1/products/comments/", None).await;
    assert_eq!(
        (st, v),
        (
            401,
            json!({"detail": "Authentication credentials were not provided."})
        )
    );
    let (_, _, v) = options(&s, "/api/v1/products/comments/", Some(&demo)).await;
    let post = &v["actions"]["POST"];
    assert_eq!(
        post["post"],
        json!({"type": "field", "required": true, "read_only": false, "label": "Post"})
    );
    assert_eq!(
        post["rating"],
        json!({"type": "integer", "required": false, "read_only": false, "label": "Rating",
               "min_value": 1, "max_value": 5})
    );
    let (_, c) = s
        .post_json(
            "/api/v1/products/comments/",
            Some(&demo),
            json!({"reply": "Mine", "post": 2}),
        )
        .await;
    let path = format!("/api/v1/products/comments/{}/", c["id"]);
    let (_, _, v) = options(&s, &path, Some(&demo)).await;
    assert_eq!(names(&v["actions"]["PUT"]), names(post));
    let (_, _, v) = options(&s, &path, Some(&other)).await;
    assert!(v.get("actions").is_none(), "{v}");

    // Users: staff only, as for a GET.
    assert_eq!(options(&s, "/api/v1/users/", None).await.0, 401);
    assert_eq!(options(&s, "/api/v1/users/", Some(&demo)).await.0, 403);

    // simplejwt's views: their own names and docstrings.
    let (st, allow, v) = options(&s, "/api/v1/auth/token/refresh/", None).await;
    assert_eq!((st, allow.as_deref()), (200, Some("POST, OPTIONS")));
    assert_eq!(v["name"], "Token Refresh");
    assert_eq!(
        v["description"],
        "Takes a refresh type JSON web token and returns an access type JSON web\n\
         token if the refresh token is valid."
    );
    assert_eq!(
        v["actions"]["POST"],
        json!({
            "refresh": {"type": "string", "required": true, "read_only": false, "label": "Refresh"},
            "access": {"type": "string", "required": false, "read_only": true, "label": "Access"},
        })
    );
    // A bad token is refused here as everywhere.
    assert_eq!(options(&s, "/api/v1/products/", Some("x.y.z")).await.0, 401);
}

async fn allow_matches_the_routed_methods(backend: Backend) {
    let s = Server::start(backend).await;
    let demo = s.demo().await;
    s.make_demo_staff().await;
    for path in VIEWS {
        let (st, allow, _) = options(&s, path, Some(&demo)).await;
        assert_eq!(st, 200, "{path}");
        let allow = allow.expect("Allow");
        let listed: Vec<&str> = allow.split(", ").collect();
        // Requests without a body: a listed method is sent anonymously (so
        // nothing is changed) and is never a 405; any other method is a 405
        // for the staff user, who passes every view's permission check
        // (anonymous callers get the view's 401 first, as in DRF).
        for method in [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::TRACE,
        ] {
            let allowed = listed.contains(&method.as_str());
            let token = (!allowed).then_some(demo.as_str());
            let res = s.send(method.clone(), path, token, None).await;
            let refused = res.status() == 405;
            assert_eq!(
                refused,
                !allowed,
                "{method} {path}: {} with Allow {allow}",
                res.status()
            );
            if refused {
                assert_eq!(res.headers()["allow"], allow.as_str(), "{method} {path}");
            }
        }
    }
}

on_both_backends!(
    metadata_and_actions_follow_drf,
    allow_matches_the_routed_methods,
);
