//! The connection pool and the embedded migrations, run at connect under an advisory lock so
//! that nodes starting together apply each migration once.

use crate::PgOptions;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use kestrel_store::StoreError;
use sha2::{Digest as _, Sha256};
use std::any::Any;
use std::fmt::Display;
use tokio_postgres::Config;

/// Every migration, oldest first: (name, SQL).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "20261205000000_keyring",
        include_str!("../migrations/20261205000000_keyring.sql"),
    ),
    (
        "20261205000100_secrets",
        include_str!("../migrations/20261205000100_secrets.sql"),
    ),
    (
        "20261205000200_server",
        include_str!("../migrations/20261205000200_server.sql"),
    ),
    (
        "20261206090000_condition_windows",
        include_str!("../migrations/20261206090000_condition_windows.sql"),
    ),
    (
        "20261206120000_audit_chain",
        include_str!("../migrations/20261206120000_audit_chain.sql"),
    ),
];

/// Any advisory lock id works as long as every kestrel node uses the same one.
const MIGRATION_LOCK: i64 = 0x6b65_7374_7265_6c00;

/// Maps a database error to a [`StoreError`] naming what was being done (never a value:
/// statements carry values as parameters, which PostgreSQL's messages do not repeat).
pub(crate) fn err<E: Display + 'static>(doing: &'static str) -> impl Fn(E) -> StoreError {
    move |e| {
        // tokio-postgres shows a server's error as "db error"; its message says what failed.
        let server = (&e as &dyn Any)
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error);
        match server {
            Some(db) => StoreError::backend(doing, format!("{e}: {}", db.message())),
            None => StoreError::backend(doing, e.to_string()),
        }
    }
}

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A pool over `config`, each connection with the options' statement timeout and the
/// planner kept on the indexes.
pub(crate) fn pool(config: Config, options: &PgOptions) -> Result<Pool, StoreError> {
    let mut config = config;
    let timeout = options.statement_timeout.as_millis();
    // Every statement here has an index to use, and a new database has no statistics until
    // autovacuum analyzes it (a minute or more). Without them, the plan PostgreSQL caches
    // for a prepared statement after its first runs can pick the wrong index (or a whole-table
    // scan for a batch: `= ANY($1)`, a join with UNNEST) and keep it while the table grows.
    // Planning each statement with its values and the table's current size, sequential scans
    // weighed down where an index serves, keeps every node on the right index from the first
    // execution; planning costs far less than one such scan.
    // JIT off: a plan that still scans a table costs over 10^10 with `enable_seqscan=off`,
    // past `jit_above_cost`, so PostgreSQL would compile it (about 200 ms) at every run. Short
    // statements like kestrel's never repay a compilation.
    let given = config.get_options().unwrap_or_default().to_owned();
    config.options(format!(
        "{given} -c statement_timeout={timeout} -c enable_seqscan=off \
         -c plan_cache_mode=force_custom_plan -c jit=off"
    ));
    let manager = Manager::from_config(
        config,
        crate::tls::connector()?,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .build()
        .map_err(err("create the connection pool"))
}

/// Applies the migrations not yet applied; refuses a database whose applied migration differs
/// from the embedded one.
pub(crate) async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(err("connect to PostgreSQL"))?;
    let tx = client
        .transaction()
        .await
        .map_err(err("start the migrations"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(err("lock the migrations"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS _migrations (
             name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await
    .map_err(err("create the migrations table"))?;
    let applied = tx
        .query("SELECT name, checksum FROM _migrations", &[])
        .await
        .map_err(err("read the applied migrations"))?;
    for (name, sql) in MIGRATIONS {
        let found = applied
            .iter()
            .find(|row| row.get::<_, &str>(0) == *name)
            .map(|row| row.get::<_, String>(1));
        match found {
            Some(sum) if sum == checksum(sql) => continue,
            Some(_) => {
                return Err(StoreError::backend(
                    "check the migrations",
                    format!("migration {name} was changed after it was applied"),
                ));
            }
            None => {
                tx.batch_execute(sql)
                    .await
                    .map_err(err("apply a migration"))?;
                tx.execute(
                    "INSERT INTO _migrations (name, checksum, applied_at) VALUES ($1, $2, $3)",
                    &[name, &checksum(sql), &crate::time::now_ms()],
                )
                .await
                .map_err(err("record a migration"))?;
            }
        }
    }
    tx.commit().await.map_err(err("commit the migrations"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a failure is a failed test.
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_connection_plans_on_indexes_without_jit() {
        let Some(url) = crate::testing::fresh_database().await else {
            return;
        };
        let config: Config = url.parse().unwrap();
        let pool = pool(config, &PgOptions::default()).unwrap();
        let client = pool.get().await.unwrap();
        for (setting, expected) in [("jit", "off"), ("enable_seqscan", "off")] {
            let row = client
                .query_one(&format!("SHOW {setting}"), &[])
                .await
                .unwrap();
            assert_eq!(row.get::<_, String>(0), expected, "{setting}");
        }
    }
}
