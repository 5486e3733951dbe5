//! Token obtain/refresh/verify and the token attacks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

use super::support::{json, Backend, Server, SECRET};

const PROTECTED: &str = "/api/v1/products/comments/";

fn claims(token_type: &str, user_id: i64, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"token_type": token_type, "exp": now + exp_offset, "iat": now, "jti": "0123456789abcdef0123456789abcdef", "user_id": user_id})
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// `POST auth/token/refresh/` with `refresh`: status and body.
async fn refresh_with(s: &Server, refresh: &str) -> (u16, Value) {
    let body = json!({ "refresh": refresh });
    s.post_json("/api/v1/auth/token/refresh/", None, body).await
}

/// `POST auth/token/verify/` with `token`: status and body.
async fn verify(s: &Server, token: &str) -> (u16, Value) {
    let body = json!({ "token": token });
    s.post_json("/api/v1/auth/token/verify/", None, body).await
}

async fn obtain_refresh_verify(backend: Backend) {
    let s = Server::start(backend).await;
    let (access, refresh) = s.login("demo@example.com").await;
    // Claims follow simplejwt.
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["token_type"], "access");
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        7 * 3600
    );
    assert!(claims["user_id"].as_i64().is_some());

    let (st, v) = refresh_with(&s, &refresh).await;
    assert_eq!(st, 200);
    let new_access = v["access"].as_str().unwrap();
    assert_eq!(s.get(PROTECTED, Some(new_access)).await.status(), 200);

    let (st, v) = verify(&s, &access).await;
    assert_eq!((st, v), (200, json!({})));
    let (st, _) = verify(&s, &refresh).await;
    assert_eq!(st, 200);
    let (st, v) = verify(&s, "garbage").await;
    assert_eq!(st, 401);
    assert_eq!(
        v,
        json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
    );

    // An access token is not a refresh token: simplejwt's TokenRefreshView
    // puts the TokenError's message in `detail`.
    let (st, v) = refresh_with(&s, &access).await;
    assert_eq!(
        (st, v),
        (
            401,
            json!({"detail": "Token has wrong type", "code": "token_not_valid"})
        )
    );
    let (st, v) = s
        .post_json("/api/v1/auth/token/refresh/", None, json!({}))
        .await;
    assert_eq!(
        (st, v),
        (400, json!({"refresh": ["This field is required."]}))
    );
}

async fn bad_credentials(backend: Backend) {
    let s = Server::start(backend).await;
    let expected = json!({"detail": "No active account found with the given credentials"});
    for body in [
        json!({"email": "demo@example.com", "password": "wrong"}),
        json!({"email": "nobody@example.com", "password": "Passw0rd!"}),
    ] {
        let (st, v) = s.post_json("/api/v1/auth/token/", None, body).await;
        assert_eq!((st, &v), (401, &expected));
    }
    let (st, v) = s
        .post_json("/api/v1/auth/token/", None, json!({"password": "x"}))
        .await;
    assert_eq!(
        (st, v),
        (400, json!({"email": ["This field is required."]}))
    );
    let (st, v) = s.post_json("/api/v1/auth/token/", None, json!({})).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"email": ["This field is required."], "password": ["This field is required."]})
        )
    );
    // An inactive user cannot log in.
    sqlx_deactivate(&s, "other@example.com").await;
    let (st, v) = s
        .post_json(
            "/api/v1/auth/token/",
            None,
            json!({"email": "other@example.com", "password": "Passw0rd!"}),
        )
        .await;
    assert_eq!((st, v), (401, expected));
}

async fn sqlx_deactivate(s: &Server, email: &str) {
    s.db.execute(&format!(
        "UPDATE users SET is_active = FALSE WHERE email = '{email}'"
    ))
    .await;
}

async fn protected_endpoint_credentials(backend: Backend) {
    let s = Server::start(backend).await;
    let res = s.get(PROTECTED, None).await;
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
    let (st, v) = json(res).await;
    assert_eq!(
        (st, v),
        (
            401,
            json!({"detail": "Authentication credentials were not provided."})
        )
    );

    // Another scheme counts as no credentials.
    let res = s
        .client
        .get(s.url(PROTECTED))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = s
        .client
        .get(s.url(PROTECTED))
        .header("authorization", "Bearer a b")
        .send()
        .await
        .unwrap();
    let (st, v) = json(res).await;
    assert_eq!(st, 401);
    assert_eq!(v["code"], "bad_authorization_header");
}

/// Sends `token` as `Bearer` and checks simplejwt's `JWTAuthentication`
/// answer, `message` being the reason it gives for the access token class.
async fn assert_refused_because(s: &Server, token: &str, message: &str, what: &str) {
    let res = s.get(PROTECTED, Some(token)).await;
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"api\"",
        "{what}"
    );
    let (st, v) = json(res).await;
    assert_eq!(st, 401, "{what}");
    assert_eq!(
        v,
        json!({
            "detail": "Given token not valid for any token type",
            "code": "token_not_valid",
            "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
        }),
        "{what}"
    );
    // Public reads refuse a bad token too (DRF authenticates whenever a header is sent).
    assert_eq!(
        s.get("/api/v1/products/1/", Some(token)).await.status(),
        401,
        "{what} on a public read"
    );
}

async fn assert_refused(s: &Server, token: &str, what: &str) {
    assert_refused_because(s, token, "Token is invalid or expired", what).await;
}

async fn token_attacks(backend: Backend) {
    let s = Server::start(backend).await;
    let (access, refresh) = s.login("demo@example.com").await;
    assert_eq!(s.get(PROTECTED, Some(&access)).await.status(), 200);

    // A correctly signed token built here is accepted: the attacks below
    // fail for their flaw, not for the test's way of building tokens.
    let good = sign(&claims("access", 1, 60), SECRET);
    assert_eq!(s.get(PROTECTED, Some(&good)).await.status(), 200);

    // alg: none, no signature.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims("access", 1, 3600).to_string());
    assert_refused(&s, &format!("{header}.{payload}."), "alg none").await;
    // alg: none, keeping the original signature.
    let sig = access.split('.').nth(2).unwrap();
    assert_refused(&s, &format!("{header}.{payload}.{sig}"), "alg none + sig").await;

    // Tampered payload (user_id changed), original signature kept.
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    let mut c: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    c["user_id"] = json!(2);
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    assert_refused(&s, &parts.join("."), "tampered").await;

    // Wrong key.
    assert_refused(
        &s,
        &sign(&claims("access", 1, 3600), "another-secret"),
        "wrong key",
    )
    .await;
    // Expired.
    assert_refused(&s, &sign(&claims("access", 1, -10), SECRET), "expired").await;
    // HS512 with the right key is still not HS256.
    let hs512 = encode(
        &Header::new(jsonwebtoken::Algorithm::HS512),
        &claims("access", 1, 3600),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_refused(&s, &hs512, "HS512").await;
    // A refresh token is never an access token.
    assert_refused_because(&s, &refresh, "Token has wrong type", "refresh as access").await;
    // Garbage.
    assert_refused(&s, "abc.def.ghi", "garbage").await;

    // Expired refresh tokens cannot be refreshed; an expired access token is
    // refused as expired, not for its type (simplejwt checks expiry first).
    let invalid = json!({"detail": "Token is invalid or expired", "code": "token_not_valid"});
    let expired = sign(&claims("refresh", 1, -10), SECRET);
    assert_eq!(refresh_with(&s, &expired).await, (401, invalid.clone()));
    let expired = sign(&claims("access", 1, -10), SECRET);
    assert_eq!(refresh_with(&s, &expired).await, (401, invalid));
}

async fn secret_kept_in_database_is_shared(backend: Backend) {
    // Two servers on one database without a configured secret accept each
    // other's tokens.
    let a = Server::start_with(backend, |c| c.jwt_secret = None).await;
    let mut cfg = super::support::config(&a.db.url);
    cfg.jwt_secret = None;
    cfg.seed = None;
    let state = market_api::AppState::open(&cfg).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(market_api::serve_state(listener, state, async {
        let _ = rx.await;
    }));
    let token = a.demo().await;
    let res = a
        .client
        .get(format!("http://{addr}{PROTECTED}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let _ = tx.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // And a token signed with a guessed secret is refused.
    assert_refused(
        &a,
        &sign(&claims("access", 1, 3600), SECRET),
        "guessed secret",
    )
    .await;
}

on_both_backends!(
    obtain_refresh_verify,
    bad_credentials,
    protected_endpoint_credentials,
    token_attacks,
    secret_kept_in_database_is_shared,
);
