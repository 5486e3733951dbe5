//! The `settings` table: values every replica sharing the database must agree
//! on, created once by whichever process gets there first.

use rand::RngCore;

use crate::db::{run, Db};

/// The JWT signing secret kept in the database; created (random, 256 bits)
/// on first use. Insert-if-absent, then read, makes concurrent first uses
/// agree on one secret, on either backend.
pub async fn jwt_secret(db: &Db) -> Result<String, sqlx::Error> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let candidate: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut tx = db.begin_write().await?;
    run!(tx.conn(), query, execute,
        sqlite: "INSERT OR IGNORE INTO settings (key, value) VALUES ('jwt_secret', ?)",
        postgres: "INSERT INTO settings (key, value) VALUES ('jwt_secret', $1) ON CONFLICT DO NOTHING",
        &candidate)?;
    let secret = run!(tx.conn(), query_scalar, fetch_one,
        sqlite: "SELECT value FROM settings WHERE key = 'jwt_secret'",
        postgres: "SELECT value FROM settings WHERE key = 'jwt_secret'")?;
    tx.commit().await?;
    Ok(secret)
}
