//! A task whose crate the engine does not link (`io.kestra.plugin.jdbc.postgresql.Query`,
//! in `kestrel-task-postgres`), in a process that registered no provider for it: its task
//! run fails, saying so.

mod common;

use common::{flow, run};
use kestrel_engine::State;

#[test]
fn an_unregistered_task_fails_saying_so() {
    let execution = run(
        &flow(concat!(
            "  - id: q\n    type: io.kestra.plugin.jdbc.postgresql.Query\n",
            "    url: jdbc:postgresql://localhost/db\n    sql: SELECT 1\n",
        )),
        &[],
    );
    assert_eq!(execution.state, State::Failed, "{execution:?}");
    assert_eq!(
        execution.task_runs[0].error.as_deref(),
        Some(
            "io.kestra.plugin.jdbc.postgresql.Query is not available in this kestrel: its crate is not registered"
        )
    );
}
