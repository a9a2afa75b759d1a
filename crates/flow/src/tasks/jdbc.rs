//! `io.kestra.plugin.jdbc.postgresql.Query`: its properties, read into [`PostgresQuery`].
//! The task runs in its own crate (`kestrel-task-postgres`), which the engine does not link.

use super::TaskType;
use crate::TaskKind;
use crate::context::{Ctx, Props};
use serde_json::Value;

/// Kestra's class name of the task.
pub(crate) const CLASS: &str = "io.kestra.plugin.jdbc.postgresql.Query";

/// The task type.
pub(crate) const POSTGRES_QUERY: TaskType = TaskType {
    class: CLASS,
    aliases: &[],
    properties: &[
        "url",
        "username",
        "password",
        "sql",
        "fetchType",
        "parameters",
        "timeZoneId",
    ],
    build,
};

/// What a query gives back (Kestra's `FetchType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchType {
    /// Every row, as the output `rows`, and `size`.
    Fetch,
    /// The first row, as the output `row`, and `size`.
    FetchOne,
    /// Every row into a file of the internal storage, its URI the output `uri`, and `size`.
    Store,
    /// Nothing: the statement runs for its effect.
    None,
}

impl FetchType {
    const ALL: [FetchType; 4] = [Self::Fetch, Self::FetchOne, Self::Store, Self::None];

    fn name(self) -> &'static str {
        match self {
            Self::Fetch => "FETCH",
            Self::FetchOne => "FETCH_ONE",
            Self::Store => "STORE",
            Self::None => "NONE",
        }
    }
}

/// A PostgreSQL query, templates unrendered.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresQuery {
    /// `url`, a template: `jdbc:postgresql://host:port/database?user=...`.
    pub url: String,
    /// `username`, a template.
    pub username: Option<String>,
    /// `password`, a template (`{{ secret('PG_PASSWORD') }}`).
    pub password: Option<String>,
    /// `sql`, a template: one statement, with `:name` parameters.
    pub sql: String,
    /// `fetchType`, default `NONE` as in Kestra.
    pub fetch_type: FetchType,
    /// `parameters`: the values of the `:name` parameters, templates in their texts.
    pub parameters: Vec<(String, Value)>,
    /// `timeZoneId`, a template: the session's time zone.
    pub time_zone_id: Option<String>,
}

fn build(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let url = props.required_text(ctx, "url");
    let sql = props.required_text(ctx, "sql");
    let username = props.text(ctx, "username");
    let password = props.text(ctx, "password");
    let fetch_type = props.choice(ctx, "fetchType", &FetchType::ALL, FetchType::name);
    let parameters = parameters(ctx, props);
    let time_zone_id = props.text(ctx, "timeZoneId");
    Some(TaskKind::PostgresQuery(Box::new(PostgresQuery {
        url: url?,
        username,
        password,
        sql: sql?,
        fetch_type: fetch_type.unwrap_or(FetchType::None),
        parameters: parameters?,
        time_zone_id,
    })))
}

/// `parameters`, a map of any values; absent: none.
fn parameters(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Vec<(String, Value)>> {
    if props.get("parameters").is_none() {
        return Some(Vec::new());
    }
    props.map(ctx, "parameters")?;
    let Some(Value::Object(map)) = props.json("parameters") else {
        return Some(Vec::new());
    };
    Some(map.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_flow;
    use serde_json::json;

    fn query(properties: &str) -> Result<PostgresQuery, Vec<String>> {
        let source =
            format!("id: f\nnamespace: dev\ntasks:\n  - id: q\n    type: {CLASS}\n{properties}");
        match parse_flow(&source) {
            Ok(mut flow) => match flow.tasks.remove(0).kind {
                TaskKind::PostgresQuery(query) => Ok(*query),
                _ => panic!("not a Query"),
            },
            Err(found) => Err(found.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn every_property_is_read() {
        let task = query(concat!(
            "    url: jdbc:postgresql://db:5432/app\n",
            "    username: kestrel\n",
            "    password: \"{{ secret('PG_PASSWORD') }}\"\n",
            "    sql: select * from t where id = :id\n",
            "    fetchType: FETCH_ONE\n",
            "    parameters:\n      id: 5\n      name: \"{{ inputs.name }}\"\n",
            "    timeZoneId: Europe/Paris\n",
        ))
        .unwrap();
        assert_eq!(task.fetch_type, FetchType::FetchOne);
        assert_eq!(
            task.password.as_deref(),
            Some("{{ secret('PG_PASSWORD') }}")
        );
        assert_eq!(
            task.parameters,
            [
                ("id".to_owned(), json!(5)),
                ("name".to_owned(), json!("{{ inputs.name }}"))
            ]
        );
        assert_eq!(task.time_zone_id.as_deref(), Some("Europe/Paris"));
    }

    #[test]
    fn url_and_sql_are_required_and_fetch_type_is_one_of_kestras() {
        let found = query("    fetchType: ALL\n").unwrap_err();
        assert_eq!(
            found,
            [
                "4:5: tasks[0].url: must not be null",
                "4:5: tasks[0].sql: must not be null",
                "6:16: tasks[0].fetchType: must be one of [FETCH, FETCH_ONE, STORE, NONE]",
            ]
        );
        let task = query("    url: u\n    sql: s\n").unwrap();
        assert_eq!(task.fetch_type, FetchType::None);
        assert!(task.parameters.is_empty());
    }
}
