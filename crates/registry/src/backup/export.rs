//! Writing an export: one consistent snapshot, table by table in batches, to a temporary file that is
//! renamed into place only when complete.

use std::io::{BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::format::{self, Header, TableEnd, TableStart, Trailer};
use super::{BackupError, Summary};
use crate::db::Db;
use crate::db::dynrow::DynRow;
use crate::db::exec::Param;
use crate::db::schema::{self, Table};

const BATCH: i64 = 1000;

/// Hashes what passes through, so the trailer can carry a checksum of everything before it.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn batch_sql(table: &Table, first: bool) -> String {
    let cols: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let pk = table.primary_key.join(", ");
    let after = if first {
        String::new()
    } else {
        let placeholders: Vec<String> = (1..=table.primary_key.len()).map(|i| format!("${i}")).collect();
        format!(" WHERE ({pk}) > ({})", placeholders.join(", "))
    };
    format!("SELECT {} FROM {}{after} ORDER BY {pk} LIMIT {BATCH}", cols.join(", "), table.name)
}

/// Exports the whole database to `path`. Returns the rows written per table.
pub async fn export(db: &Db, path: &Path) -> Result<Summary, BackupError> {
    let io = |source: std::io::Error| BackupError::Io { path: path.display().to_string(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let file = tmp.reopen().map_err(io)?;
    let sink: Box<dyn Write> =
        if gz { Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::default())) } else { Box::new(file) };
    let mut out = Hashing { inner: BufWriter::with_capacity(1 << 20, sink), hash: Sha256::new() };

    let header = Header {
        format: format::FORMAT.into(),
        version: format::VERSION,
        created_at: crate::service::now(),
        source: db.backend().as_str().into(),
        migrations: db.applied_migrations().await?,
    };
    write_line(&mut out, &header).map_err(io)?;

    let mut summary = Summary::default();
    let mut tx = db.begin_snapshot().await?;
    for table in schema::tables() {
        write_line(&mut out, &TableStart { table: table.name.clone(), columns: table.columns.iter().map(|c| c.name.clone()).collect() })
            .map_err(io)?;
        let mut rows = 0u64;
        let mut last: Option<Vec<Param>> = None;
        loop {
            let sql = batch_sql(&table, last.is_none());
            let batch: Vec<DynRow> = tx.fetch_all(&sql, last.clone().unwrap_or_default()).await?;
            let n = batch.len();
            for mut row in batch {
                let mut values = Vec::with_capacity(table.columns.len());
                for c in &table.columns {
                    let v = format::canonical(c.ty, row.take(&c.name))
                        .map_err(|reason| BackupError::Refused(format!("{}.{}: {reason}", table.name, c.name)))?;
                    values.push(v);
                }
                let key: Vec<Param> = table
                    .primary_key
                    .iter()
                    .map(|k| {
                        let i = table.columns.iter().position(|c| &c.name == k).unwrap_or(0);
                        Param::Int(values[i].as_i64())
                    })
                    .collect();
                last = Some(key);
                serde_json::to_writer(&mut out, &values).map_err(|e| io(e.into()))?;
                out.write_all(b"\n").map_err(io)?;
                rows += 1;
            }
            if (n as i64) < BATCH {
                break;
            }
        }
        write_line(&mut out, &TableEnd { end_table: table.name.clone(), rows }).map_err(io)?;
        summary.rows.insert(table.name.clone(), rows);
    }
    drop(tx);

    let digest: String = out.hash.clone().finalize().iter().map(|b| format!("{b:02x}")).collect();
    let trailer = Trailer { end: true, rows: summary.rows.clone(), sha256: digest };
    let mut inner = out.inner;
    serde_json::to_writer(&mut inner, &trailer).map_err(|e| io(e.into()))?;
    inner.write_all(b"\n").map_err(io)?;
    let sink = inner.into_inner().map_err(|e| io(e.into_error()))?;
    drop(sink); // finishes the gzip stream
    let file = tmp.as_file();
    file.sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(summary)
}

fn write_line<W: Write, T: serde::Serialize>(out: &mut W, value: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}
