//! Kestra's `io.kestra.plugin.jdbc.postgresql.Query`: one SQL statement on a PostgreSQL
//! server, with its results as outputs (`FETCH`, `FETCH_ONE`) or a file of the internal storage
//! (`STORE`).
//!
//! This crate owns the task's run, the JDBC URL, the named parameters and the conversion of
//! values; the flow crate reads its properties and the engine runs it through
//! [`kestrel_engine::TaskProvider`], which the `kestrel` binary registers ([`Provider`]), so
//! the engine links no PostgreSQL driver. It uses the driver `kestrel-store-postgres` uses.
//!
//! The password (`password`, or one in the URL) goes to the server in the authentication
//! exchange only: never in a query's text, a log entry or an error message (the driver's are
//! scrubbed of it, and messages never quote the URL), and the
//! connection says `application_name=kestrel`, so `pg_stat_activity` shows kestrel and the
//! statement with its `$n` placeholders, never a value.

mod params;
mod url;
mod values;

use async_trait::async_trait;
use chrono_tz::Tz;
use kestrel_engine::{Task, TaskContext, TaskError, TaskProvider};
use kestrel_flow::{FetchType, PostgresQuery, TaskKind};
use serde_json::{Map, Value};
use std::io::{Seek, Write};
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Statement};
use values::Param;
use zeroize::Zeroizing;

/// Runs the `io.kestra.plugin.jdbc.postgresql.Query` tasks of flows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Provider;

impl TaskProvider for Provider {
    fn task_for(&self, kind: &TaskKind) -> Option<Box<dyn Task>> {
        match kind {
            TaskKind::PostgresQuery(spec) => Some(Box::new(QueryTask {
                spec: (**spec).clone(),
            })),
            _ => None,
        }
    }
}

/// One Query task.
struct QueryTask {
    spec: PostgresQuery,
}

/// The properties, rendered. The password is zeroized when dropped, and no `Debug` shows it.
struct Rendered {
    target: url::Target,
    user: Option<String>,
    password: Option<Zeroizing<String>>,
    sql: String,
    parameters: Map<String, Value>,
    zone: Option<Tz>,
}

#[async_trait]
impl Task for QueryTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let rendered = self.render(ctx).await?;
        let client = connect(&rendered).await?;
        let (sql, names) = params::number(&rendered.sql);
        let statement = client
            .prepare(&sql)
            .await
            .map_err(|error| failure(&rendered, "Cannot prepare the query", &error))?;
        let params = bind(&names, &rendered.parameters)?;
        let run = Run {
            client: &client,
            statement: &statement,
            params: &params,
            rendered: &rendered,
        };
        run.fetch(ctx, self.spec.fetch_type).await
    }
}

impl QueryTask {
    async fn render(&self, ctx: &TaskContext<'_>) -> Result<Rendered, TaskError> {
        let spec = &self.spec;
        let target = url::parse(&ctx.render(&spec.url).await?).map_err(TaskError::new)?;
        let user = match &spec.username {
            Some(template) => Some(ctx.render(template).await?),
            None => None,
        };
        let password = match &spec.password {
            Some(template) => Some(Zeroizing::new(ctx.render(template).await?)),
            None => None,
        };
        let mut parameters = Map::new();
        for (name, value) in &spec.parameters {
            parameters.insert(name.clone(), ctx.render_value(value).await?);
        }
        let zone = match &spec.time_zone_id {
            Some(template) => Some(time_zone(&ctx.render(template).await?)?),
            None => None,
        };
        Ok(Rendered {
            target,
            user,
            password,
            sql: ctx.render(&spec.sql).await?,
            parameters,
            zone,
        })
    }
}

fn time_zone(name: &str) -> Result<Tz, TaskError> {
    name.parse()
        .map_err(|_| TaskError::new(format!("timeZoneId: '{name}' is not a time zone")))
}

/// A client connected as the rendered properties say; its connection runs on a task of its
/// own until the client is dropped.
async fn connect(rendered: &Rendered) -> Result<Client, TaskError> {
    let config = config(rendered)?;
    let tls = kestrel_store_postgres::tls_connector()
        .map_err(|error| TaskError::new(format!("Cannot configure TLS: {error}")))?;
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|error| failure(rendered, "Cannot connect to PostgreSQL", &error))?;
    drop(config);
    tokio::spawn(connection);
    // A task run dropped (killed, or past its `timeout`) closes the connection, but the server
    // notices a closed connection only when it next writes: this has it look every second and
    // cancel the statement (PostgreSQL 14 and later; older servers refuse it, harmlessly).
    let _ = client
        .batch_execute("SET client_connection_check_interval = 1000")
        .await;
    Ok(client)
}

/// The driver's settings: hosts, database, user (`username` over the URL's), password
/// (`password` over the URL's), TLS as `sslmode` says, `application_name=kestrel` and the
/// session's time zone.
fn config(rendered: &Rendered) -> Result<Config, TaskError> {
    let target = &rendered.target;
    let mut config = Config::new();
    for (host, port) in &target.hosts {
        config.host(host).port(*port);
    }
    if let Some(database) = &target.database {
        config.dbname(database);
    }
    if let Some(user) = rendered.user.as_ref().or(target.user.as_ref()) {
        config.user(user);
    }
    if let Some(password) = rendered.password.as_ref().or(target.password.as_ref()) {
        config.password(password.as_bytes());
    }
    if let Some(zone) = rendered.zone {
        config.options(format!("-c TimeZone={}", zone.name()));
    }
    config.ssl_mode(ssl_mode(target.ssl_mode.as_deref())?);
    config.application_name("kestrel");
    Ok(config)
}

/// The driver's TLS mode for the JDBC `sslmode` (default `prefer`, as the JDBC driver's). The
/// server's certificate is verified whenever TLS is used, so `require` and `verify-ca` mean
/// `verify-full`.
fn ssl_mode(jdbc: Option<&str>) -> Result<SslMode, TaskError> {
    match jdbc {
        Some("disable") => Ok(SslMode::Disable),
        None | Some("allow" | "prefer") => Ok(SslMode::Prefer),
        Some("require" | "verify-ca" | "verify-full") => Ok(SslMode::Require),
        Some(other) => Err(TaskError::new(format!(
            "url: sslmode must be disable, allow, prefer, require, verify-ca or verify-full, not '{other}'"
        ))),
    }
}

/// The parameters' values in the order of their numbers; a name without a value is refused.
fn bind(names: &[String], parameters: &Map<String, Value>) -> Result<Vec<Param>, TaskError> {
    names
        .iter()
        .map(|name| {
            parameters
                .get(name)
                .map(|value| Param(value.clone()))
                .ok_or_else(|| TaskError::new(format!("parameters: no value for :{name}")))
        })
        .collect()
}

/// A failure of the driver, as `what: <its message>`, scrubbed of the password and the user.
fn failure(rendered: &Rendered, what: &str, error: &tokio_postgres::Error) -> TaskError {
    let mut message = format!("{what}: {error}");
    if let Some(source) = std::error::Error::source(error) {
        message = format!("{message}: {source}");
    }
    let secrets = [
        rendered.password.as_ref(),
        rendered.target.password.as_ref(),
    ];
    for secret in secrets
        .into_iter()
        .flatten()
        .filter(|secret| !secret.is_empty())
    {
        message = message.replace(secret.as_str(), "******");
    }
    TaskError::new(message)
}

/// One prepared statement with its parameters, ready to run.
struct Run<'a> {
    client: &'a Client,
    statement: &'a Statement,
    params: &'a [Param],
    rendered: &'a Rendered,
}

impl Run<'_> {
    fn params(&self) -> impl ExactSizeIterator<Item = &dyn ToSql> {
        self.params.iter().map(|param| param as &dyn ToSql)
    }

    fn error(&self, error: &tokio_postgres::Error) -> TaskError {
        failure(self.rendered, "The query failed", error)
    }

    /// Runs the statement and sets the outputs `fetchType` asks for.
    async fn fetch(
        &self,
        ctx: &mut TaskContext<'_>,
        fetch_type: FetchType,
    ) -> Result<(), TaskError> {
        match fetch_type {
            FetchType::None => {
                self.client
                    .execute_raw(self.statement, self.params())
                    .await
                    .map_err(|error| self.error(&error))?;
            }
            FetchType::Fetch => {
                let rows = self.rows(None).await?;
                ctx.output("size", Value::from(rows.len()));
                ctx.output("rows", Value::Array(rows));
            }
            FetchType::FetchOne => {
                let mut rows = self.rows(Some(1)).await?;
                ctx.output("size", Value::from(rows.len()));
                ctx.output("row", rows.pop().unwrap_or(Value::Null));
            }
            FetchType::Store => self.store(ctx).await?,
        }
        Ok(())
    }

    /// The rows as JSON objects, at most `limit` of them (the others are not read).
    async fn rows(&self, limit: Option<usize>) -> Result<Vec<Value>, TaskError> {
        let mut found = Vec::new();
        self.each_row(|row| {
            found.push(Value::Object(row));
            Ok(limit.is_none_or(|limit| found.len() < limit))
        })
        .await?;
        Ok(found)
    }

    /// Writes every row, one JSON object a line, to a file stored in the internal storage:
    /// its URI is the output `uri`.
    async fn store(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let cannot =
            |error: std::io::Error| TaskError::new(format!("Cannot write the rows: {error}"));
        let mut file = tempfile::tempfile().map_err(cannot)?;
        let mut size = 0usize;
        self.each_row(|row| {
            let mut line = serde_json::to_vec(&Value::Object(row))
                .map_err(|error| TaskError::new(error.to_string()))?;
            line.push(b'\n');
            file.write_all(&line).map_err(cannot)?;
            size += 1;
            Ok(true)
        })
        .await?;
        file.rewind().map_err(cannot)?;
        let uri = ctx.store_file("result.ion", Box::new(file)).await?;
        ctx.output("uri", Value::from(uri));
        ctx.output("size", Value::from(size));
        Ok(())
    }

    /// Calls `each` with every row, as they come, until it says to stop (`false`).
    async fn each_row(
        &self,
        mut each: impl FnMut(Map<String, Value>) -> Result<bool, TaskError> + Send,
    ) -> Result<(), TaskError> {
        use futures_util::TryStreamExt;
        let stream = self
            .client
            .query_raw(self.statement, self.params())
            .await
            .map_err(|error| self.error(&error))?;
        let mut stream = std::pin::pin!(stream);
        while let Some(row) = stream
            .try_next()
            .await
            .map_err(|error| self.error(&error))?
        {
            let row = values::row(&row, self.rendered.zone).map_err(TaskError::new)?;
            if !each(row)? {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_ssl_modes_map_to_the_drivers_and_verify_whenever_tls_is_used() {
        assert_eq!(ssl_mode(None).ok(), Some(SslMode::Prefer));
        assert_eq!(ssl_mode(Some("disable")).ok(), Some(SslMode::Disable));
        assert_eq!(ssl_mode(Some("verify-ca")).ok(), Some(SslMode::Require));
        assert!(ssl_mode(Some("sometimes")).is_err());
    }
}
