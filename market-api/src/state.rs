//! Shared application state handed to every handler: the database pools, the
//! JWT keys, the password hasher and the request limits. Cheap to clone (all
//! shared parts are behind `Arc`s or are pools, which are handles already).

use std::sync::Arc;

use crate::auth::{Jwt, Passwords};
use crate::config::{FaultConfig, ServeConfig};
use crate::db::setup::Seeding;
use crate::db::{self, Db};
use crate::error::Error;
use crate::generation::Generations;
use crate::render_cache::{PageCache, ProductCache};

/// State shared by all requests.
#[derive(Clone, Debug)]
pub struct AppState {
    pub(crate) db: Db,
    pub(crate) jwt: Arc<Jwt>,
    pub(crate) passwords: Passwords,
    /// The change counter and login states, read cheaply (SQLite).
    pub(crate) generations: Arc<Generations>,
    /// Rendered `products/` pages, valid while the change counter stands.
    pub(crate) pages: Arc<PageCache>,
    /// Rendered `products/{id}/` bodies, likewise.
    pub(crate) products: Arc<ProductCache>,
    /// Largest request body accepted.
    pub(crate) body_limit: usize,
    pub(crate) fault: FaultConfig,
    /// Value of the `X-Replica` header, if any.
    pub(crate) replica_id: Option<Arc<str>>,
}

impl AppState {
    /// Opens the database, applies migrations, seeds an empty database (unless
    /// disabled) and loads or creates the JWT secret.
    pub async fn open(config: &ServeConfig) -> Result<AppState, Error> {
        let db = Db::open(&config.database_url, config.open_options()).await?;
        let seeding = match &config.seed {
            Some(seed) => Seeding::IfEmpty(seed),
            None => Seeding::None,
        };
        db::setup::migrate_and_seed(&db, seeding).await?;
        let passwords = Passwords::new(config.password_cost);
        let secret = match &config.jwt_secret {
            Some(s) => s.clone(),
            None => db::settings::jwt_secret(&db).await?,
        };
        let jwt = Jwt::new(secret.as_bytes(), config.access_ttl, config.refresh_ttl);
        Ok(AppState {
            db,
            jwt: Arc::new(jwt),
            passwords,
            generations: Arc::default(),
            pages: Arc::default(),
            products: Arc::default(),
            body_limit: config.body_limit,
            fault: config.fault,
            replica_id: config.replica_id.as_deref().map(Arc::from),
        })
    }
}
