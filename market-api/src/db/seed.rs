//! Demo data, so the tutorial's Locust file works against a fresh database:
//! `demo@example.com` and `other@example.com` (password `Passw0rd!`), more
//! users, products with ids from 1, comments. Idempotent: each kind is topped
//! up to the requested count inside one `BEGIN IMMEDIATE` transaction, so two
//! replicas seeding the same file at once insert the data once.

use chrono::{Duration as ChronoDuration, Utc};

use crate::auth::Passwords;
use crate::config::SeedConfig;
use crate::db::{products, timestamp, Db};
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

/// Whether the database has no users yet (a fresh file).
pub async fn is_empty(db: &Db) -> Result<bool, Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&db.write)
        .await?;
    Ok(n == 0)
}

fn user_email(i: u32) -> String {
    match i {
        0 => "demo@example.com".to_owned(),
        1 => "other@example.com".to_owned(),
        n => format!("user{}@example.com", n + 1),
    }
}

/// Tops the demo data up to `config`'s counts.
pub async fn seed(db: &Db, config: &SeedConfig) -> Result<(), Error> {
    // One hash shared by every seeded user: seeding stays fast at any size.
    let hash = Passwords::new(config.password_cost)
        .hash(DEMO_PASSWORD.to_owned())
        .await
        .map_err(|e| Error::Password(format!("{e:?}")))?;
    let mut tx = db.begin_write().await?;
    let now = Utc::now();
    let joined = timestamp(now);

    for i in 0..config.users.max(2) {
        let (first, last) = match i {
            0 => ("Demo".to_owned(), "User".to_owned()),
            1 => ("Other".to_owned(), "User".to_owned()),
            n => (format!("User{}", n + 1), "Example".to_owned()),
        };
        sqlx::query(
            "INSERT OR IGNORE INTO users (email, password, first_name, last_name, is_active, \
             is_staff, date_joined) VALUES (?, ?, ?, ?, 1, 0, ?)",
        )
        .bind(user_email(i))
        .bind(&hash)
        .bind(first)
        .bind(last)
        .bind(&joined)
        .execute(&mut *tx)
        .await?;
    }
    let user_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM users ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;

    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&mut *tx)
        .await?;
    let wanted = i64::from(config.products);
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
        let id = products::insert(&mut tx, owner, &write, &at).await?;
        let voters: Vec<i64> = user_ids
            .iter()
            .copied()
            .filter(|&u| u != owner)
            .take(n % 4)
            .collect();
        products::set_votes(&mut tx, id, &voters).await?;
    }

    let product_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM products ORDER BY id LIMIT 200")
        .fetch_all(&mut *tx)
        .await?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments")
        .fetch_one(&mut *tx)
        .await?;
    let wanted = i64::from(config.comments);
    if !product_ids.is_empty() {
        for i in existing..wanted {
            let n = i as usize;
            let at = timestamp(now - ChronoDuration::seconds(wanted - i));
            let user = user_ids[(n + 1) % user_ids.len()];
            sqlx::query(
                "INSERT INTO comments (created_at, updated_at, rating, reply, created_by, \
                 updated_by, user_id, post_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&at)
            .bind(&at)
            .bind(if n % 5 == 4 {
                None
            } else {
                Some((n % 5) as i64 + 1)
            })
            .bind(format!("Demo comment {}: would buy again.", i + 1))
            .bind(user)
            .bind(user)
            .bind(user)
            .bind(product_ids[n % product_ids.len()])
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
