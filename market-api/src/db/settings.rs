//! The `settings` table: values every replica sharing the database must agree
//! on, created once by whichever process gets there first.

use rand::RngCore;

use crate::db::Db;

/// The JWT signing secret kept in the database; created (random, 256 bits)
/// on first use. `INSERT OR IGNORE` makes concurrent first uses agree.
pub async fn jwt_secret(db: &Db) -> Result<String, sqlx::Error> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let candidate: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    sqlx::query("INSERT OR IGNORE INTO settings (key, value) VALUES ('jwt_secret', ?)")
        .bind(&candidate)
        .execute(&db.write)
        .await?;
    sqlx::query_scalar("SELECT value FROM settings WHERE key = 'jwt_secret'")
        .fetch_one(&db.write)
        .await
}
