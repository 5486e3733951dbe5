//! Demo data, so the tutorial's Locust file works against a fresh database:
//! `demo@example.com` and `other@example.com` (password `Passw0rd!`), more
//! users, products with ids from 1, comments. Idempotent: each kind is topped
//! up to the requested count inside one write transaction (`BEGIN IMMEDIATE`
//! on SQLite; on PostgreSQL under the start-up advisory lock, see
//! [`crate::db::setup`]), so replicas seeding at once insert the data once.

use chrono::{Duration as ChronoDuration, Utc};

use crate::auth::Passwords;
use crate::config::SeedConfig;
use crate::db::{products, run, timestamp, Conn, WriteTx};
use crate::error::Error;

/// The demo password of every seeded user.
pub const DEMO_PASSWORD: &str = "Passw0rd!";

const TAGS: [&str; 6] = ["new", "used", "sale", "vintage", "handmade", "bundle"];
const NOUNS: [&str; 10] = [
    "Lamp", "Chair", "Bicycle", "Guitar", "Phone", "Novel", "Jacket", "Camera", "Tent", "Watch",
];
const ADJECTIVES: [&str; 8] = [
    "Red", "Old", "Shiny", "Compact", "Classic", "Sturdy", "Tiny", "Smart",
];

/// Whether the database has no users yet (a fresh database).
pub async fn is_empty(conn: Conn<'_>) -> Result<bool, Error> {
    let n: i64 = run!(conn, query_scalar, fetch_one,
        sqlite: "SELECT COUNT(*) FROM users",
        postgres: "SELECT COUNT(*) FROM users")?;
    Ok(n == 0)
}

/// The demo password's hash: one, shared by every seeded user, so seeding
/// stays fast at any size.
pub async fn demo_hash(config: &SeedConfig) -> Result<String, Error> {
    Passwords::new(config.password_cost)
        .hash(DEMO_PASSWORD.to_owned())
        .await
        .map_err(|e| Error::Password(format!("{e:?}")))
}

fn user_email(i: u32) -> String {
    match i {
        0 => "demo@example.com".to_owned(),
        1 => "other@example.com".to_owned(),
        n => format!("user{}@example.com", n + 1),
    }
}

/// Tops the demo data up to `config`'s counts, inside the caller's write
/// transaction (see [`crate::db::setup`]).
pub async fn fill(tx: &mut WriteTx, hash: &str, config: &SeedConfig) -> Result<(), Error> {
    let now = Utc::now();
    let joined = timestamp(now);
    for i in 0..config.users.max(2) {
        let (first, last) = match i {
            0 => ("Demo".to_owned(), "User".to_owned()),
            1 => ("Other".to_owned(), "User".to_owned()),
            n => (format!("User{}", n + 1), "Example".to_owned()),
        };
        run!(tx.conn(), query, execute,
            sqlite: "INSERT OR IGNORE INTO users (email, password, first_name, last_name, \
                     is_active, is_staff, date_joined) VALUES (?, ?, ?, ?, 1, 0, ?)",
            postgres: "INSERT INTO users (email, password, first_name, last_name, \
                       is_active, is_staff, date_joined) VALUES ($1, $2, $3, $4, TRUE, FALSE, $5) \
                       ON CONFLICT DO NOTHING",
            user_email(i), hash, &first, &last, &joined)?;
    }
    let user_ids: Vec<i64> = run!(tx.conn(), query_scalar, fetch_all,
        sqlite: "SELECT id FROM users ORDER BY id",
        postgres: "SELECT id FROM users ORDER BY id")?;
    fill_products(tx, &user_ids, now, config.products).await?;
    fill_comments(tx, &user_ids, now, config.comments).await
}

async fn fill_products(
    tx: &mut WriteTx,
    user_ids: &[i64],
    now: chrono::DateTime<Utc>,
    wanted: u32,
) -> Result<(), Error> {
    let existing: i64 = run!(tx.conn(), query_scalar, fetch_one,
        sqlite: "SELECT COUNT(*) FROM products",
        postgres: "SELECT COUNT(*) FROM products")?;
    let wanted = i64::from(wanted);
    for i in existing..wanted {
        let n = i as usize;
        let title = format!(
            "{} {} {}",
            ADJECTIVES[n % ADJECTIVES.len()],
            NOUNS[n % NOUNS.len()],
            i + 1
        );
        let write = products::ProductWrite {
            title,
            description: format!("Demo product number {}. Gently used, ships quickly.", i + 1),
            image: None,
            category_id: Some((i % 18) + 1),
            tags: TAGS[n % TAGS.len()].to_owned(),
        };
        // Older products first, so the default `-updated_at` order shows the
        // highest ids first, as a freshly filled original would.
        let at = timestamp(now - ChronoDuration::seconds(wanted - i));
        let owner = user_ids[n % user_ids.len()];
        let id = products::insert(tx, owner, &write, &at).await?;
        let voters: Vec<i64> = user_ids
            .iter()
            .copied()
            .filter(|&u| u != owner)
            .take(n % 4)
            .collect();
        products::set_votes(tx, id, &voters).await?;
    }
    Ok(())
}

async fn fill_comments(
    tx: &mut WriteTx,
    user_ids: &[i64],
    now: chrono::DateTime<Utc>,
    wanted: u32,
) -> Result<(), Error> {
    let product_ids: Vec<i64> = run!(tx.conn(), query_scalar, fetch_all,
        sqlite: "SELECT id FROM products ORDER BY id LIMIT 200",
        postgres: "SELECT id FROM products ORDER BY id LIMIT 200")?;
    let existing: i64 = run!(tx.conn(), query_scalar, fetch_one,
        sqlite: "SELECT COUNT(*) FROM comments",
        postgres: "SELECT COUNT(*) FROM comments")?;
    let wanted = i64::from(wanted);
    if product_ids.is_empty() {
        return Ok(());
    }
    for i in existing..wanted {
        let n = i as usize;
        let at = timestamp(now - ChronoDuration::seconds(wanted - i));
        let user = user_ids[(n + 1) % user_ids.len()];
        let rating = if n % 5 == 4 {
            None
        } else {
            Some((n % 5) as i64 + 1)
        };
        run!(tx.conn(), query, execute,
            sqlite: "INSERT INTO comments (created_at, updated_at, rating, reply, created_by, \
                     updated_by, user_id, post_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            postgres: "INSERT INTO comments (created_at, updated_at, rating, reply, created_by, \
                       updated_by, user_id, post_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &at, &at, rating, format!("Demo comment {}: would buy again.", i + 1),
            user, user, user, product_ids[n % product_ids.len()])?;
    }
    Ok(())
}
