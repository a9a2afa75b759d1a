//! For tests (feature `testing`): a new, empty database on the PostgreSQL server that
//! `KESTREL_TEST_POSTGRES` names (`./scripts/test` starts one on 127.0.0.1). Without it, tests
//! skip, unless `KESTREL_REQUIRE_POSTGRES=1` says the server must be there.

/// The variable naming the test server: a URL whose user may create databases.
pub const SERVER_VARIABLE: &str = "KESTREL_TEST_POSTGRES";

/// The URL of a new, empty database, or `None` (after saying why on stderr) when no test
/// server is configured and none is required.
///
/// # Panics
/// When no server is configured but `KESTREL_REQUIRE_POSTGRES=1`, or the server refuses to
/// create a database.
pub async fn fresh_database() -> Option<String> {
    let Some(server) = std::env::var(SERVER_VARIABLE)
        .ok()
        .filter(|v| !v.is_empty())
    else {
        assert!(
            std::env::var("KESTREL_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "{SERVER_VARIABLE} is not set but KESTREL_REQUIRE_POSTGRES=1"
        );
        eprintln!("skipped: {SERVER_VARIABLE} is not set (./scripts/test sets it)");
        return None;
    };
    let name = format!("kestrel_test_{}", uuid::Uuid::new_v4().simple());
    let tls = crate::tls::connector().expect("TLS configuration");
    let (client, connection) = tokio_postgres::connect(&server, tls)
        .await
        .expect("connect to the test PostgreSQL server");
    let driver = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = driver.await;
    Some(with_database(&server, &name))
}

/// `url` naming database `name` instead of its own.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5", "t1"),
            "postgres://u@h:5/t1"
        );
    }
}
