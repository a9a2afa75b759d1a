//! The rows kestrel stores, as a program reading its database gets them: every table opened
//! read-only, every column decoded (text as text, blobs as UTF-8, numbers as decimal text).

use super::scan::Collected;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Every column of every table of the SQLite database at `path`, one text per column.
pub(crate) fn rows(path: &Path) -> Collected {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database read-only");
    let mut collected = Collected::default();
    for table in tables(&connection) {
        let mut statement = connection
            .prepare(&format!("SELECT * FROM \"{}\"", table.replace('"', "\"\"")))
            .expect("select a table");
        let names: Vec<String> = statement.column_names().map(str::to_owned).collect();
        let mut columns = vec![String::new(); names.len()];
        let mut rows = statement.query([]).expect("read a table");
        while let Some(row) = rows.next().expect("read a row") {
            for (index, column) in columns.iter_mut().enumerate() {
                if let Ok(value) = row.get_ref(index) {
                    column.push_str(&decode(value));
                    column.push('\n');
                }
            }
        }
        for (name, column) in names.iter().zip(columns) {
            collected.plain(format!("table {table} column {name}"), column);
        }
    }
    collected
}

fn tables(connection: &Connection) -> Vec<String> {
    let mut statement = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .expect("list the tables");
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("list the tables")
        .map_while(Result::ok)
        .collect()
}

fn decode(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => String::new(),
        ValueRef::Integer(number) => number.to_string(),
        ValueRef::Real(number) => number.to_string(),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}
