//! Products: shape, list (pagination, filters, search, ordering), create,
//! update, delete, permissions, has-product.

use reqwest::Method;
use serde_json::{json, Value};

use super::support::{Backend, Server};

/// The retrieve body (`GET products/{id}/`) of every product in a list page, in order.
async fn retrieve_each(s: &Server, page: &Value, token: Option<&str>) -> Vec<String> {
    let mut items = Vec::new();
    for id in ids(page) {
        let url = format!("/api/v1/products/{id}/");
        items.push(s.get(&url, token).await.text().await.unwrap());
    }
    items
}

/// The body of `GET products/?{query}`, anonymously (status not checked).
async fn list(s: &Server, query: &str) -> Value {
    s.get_json(&format!("/api/v1/products/?{query}"), Some(s.token().await))
        .await
        .1
}

/// Asserts that a list matched something and that `check` holds for every
/// product on the page.
fn assert_every(page: &Value, check: impl Fn(&Value) -> bool) {
    assert!(page["count"].as_u64().unwrap() > 0, "{page}");
    assert!(
        page["results"].as_array().unwrap().iter().all(check),
        "{page}"
    );
}

fn ids(v: &Value) -> Vec<i64> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

async fn retrieve_shape_and_not_found(backend: Backend) {
    let s = Server::start(backend).await;
    let (st, v) = s
        .get_json("/api/v1/products/1/", Some(s.token().await))
        .await;
    assert_eq!(st, 200);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "id",
        "product_id",
        "title",
        "slug",
        "description",
        "image",
        "category",
        "tags",
        "votes",
        "views",
        "user",
        "votes_count",
    ];
    let mut got = keys.clone();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
    assert_eq!(v["id"], 1);
    assert!(uuid::Uuid::parse_str(v["product_id"].as_str().unwrap()).is_ok());
    assert_eq!(v["user"].as_object().unwrap().len(), 4);
    assert_eq!(
        v["votes_count"].as_u64().unwrap() as usize,
        v["votes"].as_array().unwrap().len()
    );
    // Views are a stored field; reading does not write.
    let (_, again) = s
        .get_json("/api/v1/products/1/", Some(s.token().await))
        .await;
    assert_eq!(again["views"], v["views"]);
    // Product 3 has votes (seed: n % 4 voters).
    let (_, p3) = s
        .get_json("/api/v1/products/3/", Some(s.token().await))
        .await;
    assert_eq!(p3["votes_count"], 2);
    assert!(p3["votes"][0]["first_name"].is_string());

    for path in [
        "/api/v1/products/999/",
        "/api/v1/products/abc/",
        "/api/v1/products/0/",
        "/api/v1/products/-1/",
    ] {
        let (st, v) = s.get_json(path, Some(s.token().await)).await;
        assert_eq!((st, v), (404, json!({"detail": "Not found."})), "{path}");
    }
}

async fn list_pagination_edges(backend: Backend) {
    let s = Server::start(backend).await;
    let (st, v) = s.get_json("/api/v1/products/", Some(s.token().await)).await;
    assert_eq!(st, 200);
    assert_eq!(v["count"], 25);
    assert_eq!(v["results"].as_array().unwrap().len(), 10);
    assert_eq!(v["previous"], Value::Null);
    assert_eq!(v["next"], json!(s.url("/api/v1/products/?page=2")));
    // Newest first by default.
    assert_eq!(ids(&v)[..3], [25, 24, 23]);

    let (st, v) = s
        .get_json("/api/v1/products/?page=3", Some(s.token().await))
        .await;
    assert_eq!(st, 200);
    assert_eq!(ids(&v), vec![5, 4, 3, 2, 1]);
    assert_eq!(v["next"], Value::Null);
    assert_eq!(v["previous"], json!(s.url("/api/v1/products/?page=2")));
    let v = list(&s, "page=2").await;
    assert_eq!(v["previous"], json!(s.url("/api/v1/products/")));

    for q in [
        "page=4",
        "page=0",
        "page=abc",
        "page=-1",
        "page=99999999999999999999999",
    ] {
        let (st, v) = s
            .get_json(&format!("/api/v1/products/?{q}"), Some(s.token().await))
            .await;
        assert_eq!((st, v), (404, json!({"detail": "Invalid page."})), "{q}");
    }
    for q in [
        "page_size=abc",
        "page_size=0",
        "page_size=-5",
        "page_size=1.5",
    ] {
        let (st, v) = s
            .get_json(&format!("/api/v1/products/?{q}"), Some(s.token().await))
            .await;
        assert_eq!(st, 400, "{q}");
        assert!(v["page_size"].is_array(), "{q}: {v}");
    }
    let v = list(&s, "page_size=1000").await;
    assert_eq!(v["results"].as_array().unwrap().len(), 25);
    let v = list(&s, "page_size=7&page=last").await;
    assert_eq!(v["results"].as_array().unwrap().len(), 4);
    let v = list(&s, "page_size=5&page=2&search=demo").await;
    assert_eq!(
        v["next"],
        json!(s.url("/api/v1/products/?page_size=5&search=demo&page=3"))
    );
    // An empty result is one empty page, not a 404.
    let (st, v) = s
        .get_json(
            "/api/v1/products/?title=nothing-like-this",
            Some(s.token().await),
        )
        .await;
    assert_eq!(
        (st, v["count"].clone(), v["results"].clone()),
        (200, json!(0), json!([]))
    );
}

async fn list_filters_search_ordering(backend: Backend) {
    let s = Server::start(backend).await;
    assert_eq!(
        ids(&list(&s, "ordering=id&page_size=3").await),
        vec![1, 2, 3]
    );
    assert_eq!(
        ids(&list(&s, "ordering=-id&page_size=3").await),
        vec![25, 24, 23]
    );
    assert_eq!(
        ids(&list(&s, "ordering=bogus&page_size=2").await),
        vec![25, 24],
        "unknown ordering fields are ignored"
    );
    let v = list(&s, "ordering=title&page_size=100").await;
    let titles: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    let mut sorted = titles.clone();
    sorted.sort_unstable();
    assert_eq!(titles, sorted);

    assert_every(&list(&s, "user=2&page_size=100").await, |p| {
        p["user"]["id"] == 2
    });
    assert_every(&list(&s, "category=3&page_size=100").await, |p| {
        p["category"] == 3
    });
    let (_, p1) = s
        .get_json("/api/v1/products/1/", Some(s.token().await))
        .await;
    let title = p1["title"].as_str().unwrap();
    let v = list(&s, &format!("title={}", title.replace(' ', "%20"))).await;
    assert_eq!(ids(&v), vec![1]);
    assert_every(&list(&s, "tags=vintage&page_size=100").await, |p| {
        p["tags"] == "vintage"
    });
    // Search: case-insensitive, over title, description and tags; all terms must match.
    assert_every(&list(&s, "search=LAMP&page_size=100").await, |p| {
        p["title"].as_str().unwrap().contains("Lamp")
    });
    assert_eq!(
        ids(&list(&s, "search=number%2012.&page_size=100").await),
        vec![12]
    );
    assert_eq!(
        list(&s, "search=%25&page_size=100").await["count"],
        0,
        "LIKE wildcards are escaped"
    );
    let (st, v) = s
        .get_json("/api/v1/products/?user=abc", Some(s.token().await))
        .await;
    assert_eq!((st, v), (400, json!({"user": ["Enter a number."]})));
}

async fn create_and_validation(backend: Backend) {
    let s = Server::start(backend).await;
    let body = json!({"title": "Lamp", "description": "bright", "tags": "home", "category": 9, "votes": [2, 3]});
    let (st, v) = s.post_json("/api/v1/products/", None, body.clone()).await;
    assert_eq!(
        (st, v),
        (
            401,
            json!({"detail": "Authentication credentials were not provided."})
        )
    );

    let token = s.demo().await;
    let (st, v) = s
        .post_json("/api/v1/products/", Some(&token), body.clone())
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["slug"], "lamp");
    assert_eq!(v["user"]["id"], 1);
    assert_eq!(v["category"], 9);
    assert_eq!(v["votes_count"], 2);
    assert_eq!(v["views"], 0);
    let id = v["id"].as_i64().unwrap();
    let (st, fetched) = s
        .get_json(&format!("/api/v1/products/{id}/"), Some(s.token().await))
        .await;
    assert_eq!((st, &fetched), (200, &v));
    let (_, v2) = s
        .post_json(
            "/api/v1/products/",
            Some(&token),
            json!({"title": "Lamp", "user": 1}),
        )
        .await;
    assert_eq!(v2["slug"], "lamp-1");
    assert_eq!(v2["votes"], json!([]));
    let (_, v3) = s
        .post_json("/api/v1/products/", Some(&token), json!({"title": "lamp!"}))
        .await;
    assert_eq!(v3["slug"], "lamp-2");
    // Image paths become absolute URLs.
    let (_, v4) = s
        .post_json(
            "/api/v1/products/",
            Some(&token),
            json!({"title": "Pic", "image": "products/p.png"}),
        )
        .await;
    assert_eq!(v4["image"], json!(s.url("/media/products/p.png")));

    let cases = [
        (json!({}), "title", "This field is required."),
        (
            json!({"title": ""}),
            "title",
            "This field may not be blank.",
        ),
        (
            json!({"title": "x".repeat(131)}),
            "title",
            "Ensure this field has no more than 130 characters.",
        ),
        (
            json!({"title": "t", "description": "d".repeat(1501)}),
            "description",
            "Ensure this field has no more than 1500 characters.",
        ),
        (
            json!({"title": "t", "tags": "t".repeat(71)}),
            "tags",
            "Ensure this field has no more than 70 characters.",
        ),
        (
            json!({"title": "t", "category": 19}),
            "category",
            "Invalid pk \"19\" - object does not exist.",
        ),
        (
            json!({"title": "t", "category": "x"}),
            "category",
            "Incorrect type. Expected pk value, received str.",
        ),
        (
            json!({"title": "t", "category": "99"}),
            "category",
            "Invalid pk \"99\" - object does not exist.",
        ),
        (
            json!({"title": "t", "category": 99}),
            "category",
            "Invalid pk \"99\" - object does not exist.",
        ),
        (
            json!({"title": "t", "votes": [1, "x"]}),
            "votes",
            "Incorrect type. Expected pk value, received str.",
        ),
        (
            json!({"title": "a\u{0}b"}),
            "title",
            "Null characters are not allowed.",
        ),
        (
            json!({"title": "t", "tags": "\u{0}"}),
            "tags",
            "Null characters are not allowed.",
        ),
        (
            json!({"title": "t", "votes": [999]}),
            "votes",
            "Invalid pk \"999\" - object does not exist.",
        ),
        (
            json!({"title": "t", "votes": 2}),
            "votes",
            "Expected a list of items but got type \"int\".",
        ),
        (
            json!({"title": "t", "votes": [{"id": 1}]}),
            "votes",
            "Incorrect type. Expected pk value, received dict.",
        ),
        (json!({"title": ["t"]}), "title", "Not a valid string."),
        (
            json!({"title": "t", "user": 2}),
            "user",
            "Must be the authenticated user.",
        ),
    ];
    s.assert_rejected("/api/v1/products/", &token, &cases).await;
    // Nothing of the rejected bodies was stored.
    assert_eq!(list(&s, "").await["count"], 29);
}

/// Title, description, tags, category and voters of product `id`, read
/// from the database file.
async fn stored_product(s: &Server, id: i64) -> (String, String, String, Option<i64>, Vec<i64>) {
    let (title, description, tags, category): (String, String, String, Option<i64>) =
        s.db.fetch_one(&format!(
            "SELECT title, description, tags, category_id FROM products WHERE id = {id}"
        ))
        .await;
    let votes: Vec<(i64,)> =
        s.db.fetch_all(&format!(
            "SELECT user_id FROM product_votes WHERE product_id = {id} ORDER BY user_id"
        ))
        .await;
    let votes = votes.into_iter().map(|v| v.0).collect();
    (title, description, tags, category, votes)
}

async fn update_and_delete_by_owner_only(backend: Backend) {
    let s = Server::start(backend).await;
    let demo = s.demo().await;
    let other = s.other().await;
    let (_, created) = s
        .post_json(
            "/api/v1/products/",
            Some(&demo),
            json!({"title": "Desk", "tags": "wood", "category": 9, "votes": [2]}),
        )
        .await;
    let path = format!("/api/v1/products/{}/", created["id"]);

    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let (st, v) = s
            .send_json(
                method.clone(),
                &path,
                Some(&other),
                Some(json!({"title": "Mine"})),
            )
            .await;
        assert_eq!(
            (st, v),
            (
                403,
                json!({"detail": "You do not have permission to perform this action."})
            ),
            "{method}"
        );
        let (st, _) = s
            .send_json(method.clone(), &path, None, Some(json!({"title": "Mine"})))
            .await;
        assert_eq!(st, 401, "{method}");
    }
    // Non-owner with a malformed body still gets 403 (permission before parsing).
    let res = s
        .client
        .patch(s.url(&path))
        .bearer_auth(&other)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let (st, v) = s
        .send_json(
            Method::PATCH,
            &path,
            Some(&demo),
            Some(json!({"description": "oak"})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        (
            v["title"].clone(),
            v["description"].clone(),
            v["tags"].clone(),
            v["category"].clone()
        ),
        (json!("Desk"), json!("oak"), json!("wood"), json!(9))
    );
    assert_eq!(v["votes_count"], 1);
    let (st, v) = s
        .send_json(
            Method::PUT,
            &path,
            Some(&demo),
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(
        (st, v),
        (400, json!({"title": ["This field is required."]}))
    );
    // PUT sets the fields it is sent and keeps the others, as DRF's
    // ModelSerializer.update() does: checked in the stored row.
    let id = created["id"].as_i64().unwrap();
    let (st, v) = s
        .send_json(
            Method::PUT,
            &path,
            Some(&demo),
            Some(json!({"title": "Table", "votes": [3, 4]})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let kept = (
        "Table".to_owned(),
        "oak".to_owned(),
        "wood".to_owned(),
        Some(9),
        vec![3, 4],
    );
    assert_eq!(stored_product(&s, id).await, kept);
    assert_eq!(
        (&v["title"], &v["description"], &v["tags"], &v["category"]),
        (&json!("Table"), &json!("oak"), &json!("wood"), &json!(9))
    );
    let (st, _) = s
        .send_json(
            Method::PUT,
            &path,
            Some(&demo),
            Some(json!({"title": "Table"})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(stored_product(&s, id).await, kept, "votes not sent: kept");
    // Values that are sent are written, empty and null ones included.
    let (st, _) = s
        .send_json(
            Method::PUT,
            &path,
            Some(&demo),
            Some(json!({"title": "Bare", "description": "", "tags": "", "category": null, "votes": []})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        stored_product(&s, id).await,
        ("Bare".into(), String::new(), String::new(), None, vec![])
    );
    let (st, _) = s
        .send_json(
            Method::PATCH,
            "/api/v1/products/9999/",
            Some(&demo),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 404);

    let before = list(&s, "").await;
    let res = s.send(Method::DELETE, &path, Some(&demo), None).await;
    assert_eq!(res.status(), 204);
    assert_eq!(s.get(&path, Some(s.token().await)).await.status(), 404);
    let after = list(&s, "").await;
    assert_eq!(
        after["count"].as_i64().unwrap(),
        before["count"].as_i64().unwrap() - 1
    );
    assert!(!ids(&after).contains(&created["id"].as_i64().unwrap()));
    assert_eq!(
        s.send(Method::DELETE, &path, Some(&demo), None)
            .await
            .status(),
        404
    );
}

async fn has_product(backend: Backend) {
    let s = Server::start(backend).await;
    let (st, v) = s
        .get_json("/api/v1/products/has-product/?client=1", None)
        .await;
    assert_eq!((st, v), (200, json!({"has_product": true})));
    let (_, v) = s
        .get_json("/api/v1/products/has-product/?client=999", None)
        .await;
    assert_eq!(v, json!({"has_product": false}));
    let (st, v) = s.get_json("/api/v1/products/has-product/", None).await;
    assert_eq!(
        (st, v),
        (400, json!({"client": ["This field is required."]}))
    );
    let (st, _) = s
        .get_json("/api/v1/products/has-product/?client=x", None)
        .await;
    assert_eq!(st, 400);
}

/// Pins the exact bytes of a list page: every item must be the same text the
/// serializer of create/retrieve produces (key order, escaping of quotes,
/// backslashes, control characters and non-ASCII, absolute image URLs for
/// product and owner, votes and their count), wrapped in
/// `{"count","next","previous","results"}` exactly.
async fn list_json_is_exact(backend: Backend) {
    let s = Server::start(backend).await;
    let token = s.demo().await;
    // The owner's avatar is stored as a relative media path with a quote.
    s.db.execute("UPDATE users SET image = '/avatars/d\"emo.png' WHERE email = 'demo@example.com'")
        .await;
    let tricky = "q\"uote \\back é 😀 \n\t\r\u{1}\u{8}\u{c}\u{1f}\u{7f} \u{2028} </b> &";
    let bodies = [
        json!({"title": tricky, "description": tricky, "tags": "t\"ag", "category": 7,
               "image": "img/a b.png", "votes": [2, 1, 3]}),
        json!({"title": "Plain", "image": "https://cdn.example/X.png", "votes": []}),
        json!({"title": "Upper scheme", "image": "HTTP://cdn.example/y.png", "category": null}),
    ];
    let mut created = Vec::new();
    for body in bodies {
        let res = s
            .send(Method::POST, "/api/v1/products/", Some(&token), Some(body))
            .await;
        assert_eq!(res.status(), 201);
        created.push(res.text().await.unwrap());
    }
    let res = s.get("/api/v1/products/?page_size=5", Some(&token)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let page = res.text().await.unwrap();
    let v: Value = serde_json::from_str(&page).unwrap();
    let items = retrieve_each(&s, &v, Some(&token)).await;
    // The newest three are the ones just created, newest first.
    assert_eq!(items[0], created[2]);
    assert_eq!(items[1], created[1]);
    assert_eq!(items[2], created[0]);
    let expected = format!(
        "{{\"count\":28,\"next\":\"{}\",\"previous\":null,\"results\":[{}]}}",
        s.url("/api/v1/products/?page_size=5&page=2"),
        items.join(",")
    );
    assert_eq!(page, expected);
    // Spot checks of the serializer's own output.
    let first: Value = serde_json::from_str(&created[0]).unwrap();
    assert_eq!(first["title"], tricky);
    assert_eq!(first["image"], json!(s.url("/media/img/a b.png")));
    assert_eq!(
        first["user"]["image"],
        json!(s.url("/media/avatars/d\"emo.png"))
    );
    assert_eq!(first["votes_count"], 3);
    assert!(created[0].contains(r#""votes":[{"id":1,"first_name":"Demo"},{"id":2,"first_name":"Other"},{"id":3,"first_name":"User3"}]"#));
    assert!(created[2].contains(r#""image":"http://127.0.0.1:"#));

    // A later page and the last page, byte for byte as well.
    for q in ["page_size=5&page=2", "page_size=5&page=last"] {
        let page = s
            .get(&format!("/api/v1/products/?{q}"), Some(s.token().await))
            .await
            .text()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&page).unwrap();
        let items = retrieve_each(&s, &v, Some(s.token().await)).await;
        let link = |x: &Value| match x.as_str() {
            Some(u) => format!("\"{u}\""),
            None => "null".to_owned(),
        };
        let expected = format!(
            "{{\"count\":28,\"next\":{},\"previous\":{},\"results\":[{}]}}",
            link(&v["next"]),
            link(&v["previous"]),
            items.join(",")
        );
        assert_eq!(page, expected, "{q}");
    }

    // Writes from another connection (as another replica would make) show
    // at once, although the pages above were cached.
    let first = s
        .get("/api/v1/products/", Some(s.token().await))
        .await
        .text()
        .await
        .unwrap();
    let newest = ids(&serde_json::from_str(&first).unwrap())[0];
    for sql in [
        format!("UPDATE products SET title = 'Renamed' WHERE id = {newest}"),
        "UPDATE users SET first_name = 'Renamed2' WHERE email = 'demo@example.com'".to_owned(),
        format!("DELETE FROM product_votes WHERE product_id = {newest}"),
        format!("INSERT INTO product_votes (product_id, user_id) VALUES ({newest}, 4)"),
        format!("DELETE FROM products WHERE id = {newest}"),
    ] {
        s.db.execute(&sql).await;
        let page = s
            .get("/api/v1/products/", Some(s.token().await))
            .await
            .text()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&page).unwrap();
        let items = retrieve_each(&s, &v, Some(s.token().await)).await;
        assert!(page.ends_with(&format!("[{}]}}", items.join(","))), "{sql}");
        let count = v["count"].as_i64().unwrap();
        let (n,): (i64,) = s.db.fetch_one("SELECT COUNT(*) FROM products").await;
        assert_eq!(count, n, "{sql}");
    }
    let page = s
        .get("/api/v1/products/", Some(s.token().await))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&format!("\"id\":{newest},\"product_id\"")));
    assert_ne!(page, first);
}

on_both_backends!(
    retrieve_shape_and_not_found,
    list_pagination_edges,
    list_filters_search_ordering,
    create_and_validation,
    update_and_delete_by_owner_only,
    has_product,
    list_json_is_exact,
);
