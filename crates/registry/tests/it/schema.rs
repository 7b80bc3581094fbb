//! The schema description (`db::schema`, derived from the catalogue) matches the tables the migrations
//! create, on both backends: same tables, same columns, same types and nullability.

use std::collections::{BTreeMap, BTreeSet};

use endoreg_registry::db::Db;
use endoreg_registry::db::schema::{self, ColType};

use crate::backends;
use crate::support::{Backend, TestApp};

backends!(schema_description_matches_the_migrated_database);

fn expected_sql_type(ty: ColType, backend: Backend) -> &'static str {
    match (backend, ty) {
        (Backend::Sqlite, ColType::Id | ColType::Int | ColType::Bool) => "INTEGER",
        (Backend::Sqlite, ColType::Float) => "REAL",
        (Backend::Sqlite, _) => "TEXT",
        (Backend::Postgres, ColType::Id | ColType::Int) => "bigint",
        (Backend::Postgres, ColType::Float) => "double precision",
        (Backend::Postgres, ColType::Bool) => "boolean",
        (Backend::Postgres, ColType::Text) => "text",
        (Backend::Postgres, ColType::Date) => "date",
        (Backend::Postgres, ColType::Timestamp) => "timestamp with time zone",
        (Backend::Postgres, ColType::Json) => "jsonb",
    }
}

/// table → column → (type, nullable)
async fn actual(db: &Db, backend: Backend) -> BTreeMap<String, BTreeMap<String, (String, bool)>> {
    let mut out: BTreeMap<String, BTreeMap<String, (String, bool)>> = BTreeMap::new();
    match backend {
        Backend::Sqlite => {
            let tables: Vec<(String,)> = db
                .fetch_all(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
                    vec![],
                )
                .await
                .unwrap();
            for (t,) in tables {
                let cols: Vec<(String, String, i64, i64)> =
                    db.fetch_all(&format!("SELECT name, type, \"notnull\", pk FROM pragma_table_info('{t}')"), vec![]).await.unwrap();
                let entry = out.entry(t).or_default();
                for (name, ty, notnull, pk) in cols {
                    entry.insert(name, (ty, notnull == 0 && pk == 0));
                }
            }
        }
        Backend::Postgres => {
            let cols: Vec<(String, String, String, String)> = db
                .fetch_all(
                    "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
                    vec![],
                )
                .await
                .unwrap();
            for (t, c, ty, nullable) in cols {
                out.entry(t).or_default().insert(c, (ty, nullable == "YES"));
            }
        }
    }
    out
}

async fn schema_description_matches_the_migrated_database(app: TestApp) {
    let actual = actual(&app.db, app.backend).await;
    let described: BTreeSet<String> = schema::tables().into_iter().map(|t| t.name).collect();
    let present: BTreeSet<String> = actual.keys().cloned().collect();
    assert_eq!(described, present, "tables described vs tables created");
    for table in schema::tables() {
        let cols = &actual[&table.name];
        let names: BTreeSet<&String> = cols.keys().collect();
        let expected: BTreeSet<&String> = table.columns.iter().map(|c| &c.name).collect();
        assert_eq!(expected, names, "columns of {}", table.name);
        for c in &table.columns {
            let (ty, nullable) = &cols[&c.name];
            assert_eq!(ty, expected_sql_type(c.ty, app.backend), "type of {}.{}", table.name, c.name);
            if c.ty != ColType::Id {
                assert_eq!(*nullable, c.nullable, "nullability of {}.{}", table.name, c.name);
            }
        }
    }
}
