//! Embedded, timestamped migrations, run at open; an applied one is never edited.

use kestrel_store::StoreError;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior};
use sha2::{Digest as _, Sha256};

/// Every migration, oldest first: (name, SQL).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "20261126000000_initial",
        include_str!("../migrations/20261126000000_initial.sql"),
    ),
    (
        "20261201000000_server",
        include_str!("../migrations/20261201000000_server.sql"),
    ),
    (
        "20261202000000_unfinished_executions",
        include_str!("../migrations/20261202000000_unfinished_executions.sql"),
    ),
    (
        "20261205000000_queue",
        include_str!("../migrations/20261205000000_queue.sql"),
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

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn db(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(context, e)
}

/// Applies the migrations not yet applied, each in the one transaction that also checks the
/// applied ones (so two processes opening a new file at once do not both migrate it).
pub(crate) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _migrations (
             name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .map_err(db("create the migrations table"))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db("start migrating"))?;
    let applied: Vec<(String, String)> = tx
        .prepare("SELECT name, checksum FROM _migrations ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(db("read the applied migrations"))?;
    if let Some((name, _)) = applied
        .iter()
        .find(|(name, _)| !MIGRATIONS.iter().any(|(known, _)| known == name))
    {
        return Err(StoreError::backend(
            "open the database",
            format!("it was written by a newer kestrel (migration {name}); upgrade kestrel"),
        ));
    }
    for (name, sql) in MIGRATIONS {
        apply(&tx, name, sql)?;
    }
    tx.commit().map_err(db("commit the migrations"))
}

fn apply(tx: &rusqlite::Transaction<'_>, name: &str, sql: &str) -> Result<(), StoreError> {
    let sum = checksum(sql);
    let known: Option<String> = tx
        .query_row(
            "SELECT checksum FROM _migrations WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(db("read a migration"))?;
    match known {
        Some(stored) if stored == sum => Ok(()),
        Some(_) => Err(StoreError::backend(
            "open the database",
            format!("migration {name} differs from the one applied to this database"),
        )),
        None => {
            tx.execute_batch(sql)
                .map_err(|e| StoreError::backend(format!("apply migration {name}"), e))?;
            tx.execute(
                "INSERT INTO _migrations (name, checksum, applied_at) VALUES (?1, ?2, ?3)",
                (name, sum, crate::time::now_ms()),
            )
            .map_err(db("record a migration"))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        run(&mut conn).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM _migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);
    }

    #[test]
    fn an_edited_migration_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        conn.execute("UPDATE _migrations SET checksum = 'x'", [])
            .unwrap();
        let err = run(&mut conn).unwrap_err();
        assert!(err.to_string().contains("differs"), "{err}");
    }

    #[test]
    fn a_database_from_a_newer_kestrel_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO _migrations VALUES ('29990101000000_future', 'x', 0)",
            [],
        )
        .unwrap();
        let err = run(&mut conn).unwrap_err();
        assert!(err.to_string().contains("newer kestrel"), "{err}");
    }

    #[test]
    fn the_schema_holds_the_servers_tables() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        for table in [
            "flows",
            "executions",
            "task_runs",
            "logs",
            "users",
            "tokens",
        ] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "{table}");
        }
    }
}
