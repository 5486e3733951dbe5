//! Comments: list, create, retrieve (fixed), author-only changes.

use reqwest::Method;
use serde_json::{json, Value};

use super::support::{Backend, Server};

async fn list_and_create(backend: Backend) {
    let s = Server::start(backend).await;
    assert_eq!(
        s.get("/api/v1/products/comments/", None).await.status(),
        401
    );
    let token = s.demo().await;
    let (st, v) = s.get_json("/api/v1/products/comments/", Some(&token)).await;
    assert_eq!(st, 200);
    assert_eq!(v["count"], 30);
    assert_eq!(v["results"].as_array().unwrap().len(), 10);
    assert_eq!(v["results"][0]["id"], 30, "newest first");
    let keys: Vec<&String> = v["results"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 10);
    let (st, _) = s
        .get_json("/api/v1/products/comments/?page=4", Some(&token))
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .get_json("/api/v1/products/comments/?page_size=x", Some(&token))
        .await;
    assert_eq!(st, 400);
    let (_, v) = s
        .get_json(
            "/api/v1/products/comments/?post=2&page_size=100",
            Some(&token),
        )
        .await;
    assert!(v["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["post"] == 2));

    let (st, v) = s
        .post_json(
            "/api/v1/products/comments/",
            Some(&token),
            json!({"reply": "Nice", "rating": 5, "post": 2}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["user"], 1);
    assert_eq!(v["created_by"], 1);
    assert_eq!(v["updated_by"], 1);
    assert_eq!(v["deleted_at"], Value::Null);
    assert_eq!(v["post"], 2);
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    let (_, v) = s
        .post_json(
            "/api/v1/products/comments/",
            Some(&token),
            json!({"reply": "Meh", "rating": null, "post": 2}),
        )
        .await;
    assert_eq!(v["rating"], Value::Null);

    let cases = [
        (json!({"post": 2}), "reply", "This field is required."),
        (
            json!({"reply": "", "post": 2}),
            "reply",
            "This field may not be blank.",
        ),
        (
            json!({"reply": "r".repeat(301), "post": 2}),
            "reply",
            "Ensure this field has no more than 300 characters.",
        ),
        (
            json!({"reply": "r", "post": 2, "rating": 0}),
            "rating",
            "Ensure this value is greater than or equal to 1.",
        ),
        (
            json!({"reply": "r", "post": 2, "rating": 6}),
            "rating",
            "Ensure this value is less than or equal to 5.",
        ),
        (
            json!({"reply": "r", "post": 2, "rating": "five"}),
            "rating",
            "A valid integer is required.",
        ),
        (json!({"reply": "r"}), "post", "This field is required."),
        (
            json!({"reply": "r", "post": 9999}),
            "post",
            "Invalid pk \"9999\" - object does not exist.",
        ),
    ];
    s.assert_rejected("/api/v1/products/comments/", &token, &cases)
        .await;
    let (_, v) = s.get_json("/api/v1/products/comments/", Some(&token)).await;
    assert_eq!(v["count"], 32);
}

/// Reply, rating and product of comment `id`, read from the database file.
async fn stored_comment(s: &Server, id: i64) -> (String, Option<i64>, i64) {
    s.db.fetch_one(&format!(
        "SELECT reply, rating, post_id FROM comments WHERE id = {id}"
    ))
    .await
}

async fn retrieve_update_delete(backend: Backend) {
    let s = Server::start(backend).await;
    let demo = s.demo().await;
    let other = s.other().await;
    let (_, c) = s
        .post_json(
            "/api/v1/products/comments/",
            Some(&demo),
            json!({"reply": "First", "rating": 4, "post": 1}),
        )
        .await;
    let path = format!("/api/v1/products/comments/{}/", c["id"]);
    // Anyone logged in can read it (the original answered 403).
    let (st, v) = s.get_json(&path, Some(&other)).await;
    assert_eq!((st, &v), (200, &c));
    assert_eq!(s.get(&path, None).await.status(), 401);
    assert_eq!(
        s.get("/api/v1/products/comments/9999/", Some(&demo))
            .await
            .status(),
        404
    );
    assert_eq!(
        s.get("/api/v1/products/comments/x/", Some(&demo))
            .await
            .status(),
        404
    );

    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let (st, _) = s
            .send_json(
                method.clone(),
                &path,
                Some(&other),
                Some(json!({"reply": "x", "post": 1})),
            )
            .await;
        assert_eq!(st, 403, "{method}");
    }
    let (st, v) = s
        .send_json(
            Method::PATCH,
            &path,
            Some(&demo),
            Some(json!({"rating": 2})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        (v["reply"].clone(), v["rating"].clone()),
        (json!("First"), json!(2))
    );
    let (st, v) = s
        .send_json(
            Method::PUT,
            &path,
            Some(&demo),
            Some(json!({"reply": "Second"})),
        )
        .await;
    assert_eq!((st, v), (400, json!({"post": ["This field is required."]})));
    // A PUT without `rating` keeps it (DRF's ModelSerializer.update() sets
    // only what it was sent): checked in the stored row.
    let id = c["id"].as_i64().unwrap();
    let (st, v) = s
        .send_json(
            Method::PUT,
            &path,
            Some(&demo),
            Some(json!({"reply": "Second", "post": 3})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        (v["reply"].clone(), v["rating"].clone(), v["post"].clone()),
        (json!("Second"), json!(2), json!(3))
    );
    assert_eq!(stored_comment(&s, id).await, ("Second".into(), Some(2), 3));
    let (st, _) = s
        .send_json(
            Method::PUT,
            &path,
            Some(&demo),
            Some(json!({"reply": "Third", "post": 3, "rating": null})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(stored_comment(&s, id).await, ("Third".into(), None, 3));
    let (st, v) = s
        .send_json(
            Method::PUT,
            &path,
            Some(&demo),
            Some(json!({"reply": "a\u{0}", "post": 3})),
        )
        .await;
    assert_eq!(
        (st, v),
        (400, json!({"reply": ["Null characters are not allowed."]}))
    );
    assert_eq!(stored_comment(&s, id).await, ("Third".into(), None, 3));

    assert_eq!(
        s.send(Method::DELETE, &path, Some(&demo), None)
            .await
            .status(),
        204
    );
    assert_eq!(s.get(&path, Some(&demo)).await.status(), 404);
}

async fn deleting_a_product_removes_its_comments(backend: Backend) {
    let s = Server::start(backend).await;
    let demo = s.demo().await;
    let (_, p) = s
        .post_json(
            "/api/v1/products/",
            Some(&demo),
            json!({"title": "Short-lived"}),
        )
        .await;
    let (_, c) = s
        .post_json(
            "/api/v1/products/comments/",
            Some(&demo),
            json!({"reply": "x", "post": p["id"]}),
        )
        .await;
    assert_eq!(
        s.send(
            Method::DELETE,
            &format!("/api/v1/products/{}/", p["id"]),
            Some(&demo),
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        s.get(
            &format!("/api/v1/products/comments/{}/", c["id"]),
            Some(&demo)
        )
        .await
        .status(),
        404
    );
}

/// Concurrent PATCHes of one comment, half changing its reply and half its
/// rating: each is applied to the row as the previous one left it, so
/// neither field ends where it started. (On PostgreSQL each transaction read
/// the row before the other committed and wrote both fields back: a rating
/// PATCH could put the old reply back.)
async fn concurrent_partial_edits_lose_no_field(backend: Backend) {
    // Room for the transactions to overlap.
    let s = Server::start_with(backend, |c| c.pool_size = Some(8)).await;
    let token = s.demo().await;
    for round in 0..10 {
        let (st, c) = s
            .post_json(
                "/api/v1/products/comments/",
                Some(&token),
                json!({"reply": "original", "rating": 1, "post": 2}),
            )
            .await;
        assert_eq!(st, 201, "{c}");
        let path = format!("/api/v1/products/comments/{}/", c["id"]);
        let edits = (0..16).map(|i| {
            let body = if i % 2 == 0 {
                json!({"reply": format!("reply {i}")})
            } else {
                json!({"rating": 2 + (i / 2) % 4})
            };
            s.send_json(Method::PATCH, &path, Some(&token), Some(body))
        });
        for (st, v) in futures::future::join_all(edits).await {
            assert_eq!(st, 200, "{v}");
        }
        let (_, v) = s.get_json(&path, Some(&token)).await;
        assert_ne!(
            v["reply"], "original",
            "round {round}: a reply was lost: {v}"
        );
        assert_ne!(v["rating"], 1, "round {round}: a rating was lost: {v}");
    }
}

/// A comment moved onto its own product (a PATCH of `post`) while that
/// product is deleted: the two take the rows' locks in opposite orders, and
/// whichever loses answers 503 (try again), never a 500.
async fn a_comment_moved_while_its_product_goes_is_never_a_500(backend: Backend) {
    let s = Server::start_with(backend, |c| c.pool_size = Some(8)).await;
    let token = s.demo().await;
    for round in 0..10 {
        let (st, p) = s
            .post_json(
                "/api/v1/products/",
                Some(&token),
                json!({"title": format!("race {round}"), "description": "d", "tags": "t", "category": 1}),
            )
            .await;
        assert_eq!(st, 201, "{p}");
        let (st, c) = s
            .post_json(
                "/api/v1/products/comments/",
                Some(&token),
                json!({"reply": "r", "rating": 1, "post": p["id"]}),
            )
            .await;
        assert_eq!(st, 201, "{c}");
        let comment = format!("/api/v1/products/comments/{}/", c["id"]);
        let product = format!("/api/v1/products/{}/", p["id"]);
        let moves = (0..4).map(|_| {
            s.send_json(
                Method::PATCH,
                &comment,
                Some(&token),
                Some(json!({"post": p["id"]})),
            )
        });
        let delete = s.send(Method::DELETE, &product, Some(&token), None);
        let (moved, deleted) = tokio::join!(futures::future::join_all(moves), delete);
        assert!(
            [204, 503].contains(&deleted.status().as_u16()),
            "round {round}: delete answered {}",
            deleted.status()
        );
        for (st, v) in moved {
            assert!(
                [200, 400, 404, 503].contains(&st),
                "round {round}: a PATCH answered {st}: {v}"
            );
        }
    }
}

on_both_backends!(
    a_comment_moved_while_its_product_goes_is_never_a_500,
    list_and_create,
    retrieve_update_delete,
    deleting_a_product_removes_its_comments,
    concurrent_partial_edits_lose_no_field,
);
