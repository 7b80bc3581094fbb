//! `endoreg query`: the questions researchers asked EndoregDB's Django shell, answered through the same
//! service functions as the API.

use std::process::ExitCode;

use anyhow::{Result, bail};
use serde::Serialize;

use endoreg_common::api::{ExaminationFilter, Paging, PatientFilter, SegmentFilter};
use endoreg_registry::db::Db;
use endoreg_registry::service::{examinations, patients, segments, terminology};

use crate::commands::QueryCommand;

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows as aligned columns.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r.clone());
    }
}

async fn patient_id(db: &Db, patient: &str) -> Result<i64> {
    if let Ok(id) = patient.parse::<i64>() {
        return Ok(id);
    }
    let filter = PatientFilter { center: None, pseudonym: Some(patient.to_owned()), page: None, per_page: None };
    let page = patients::list(db, &filter, &Paging::default()).await?;
    match page.items.first() {
        Some(p) => Ok(p.id),
        None => bail!("no patient with id or pseudonym `{patient}`"),
    }
}

pub async fn run(db: &Db, query: QueryCommand, json: bool) -> Result<ExitCode> {
    match query {
        QueryCommand::PatientExaminations { patient } => {
            let id = patient_id(db, &patient).await?;
            patients::get(db, id).await?;
            let filter = ExaminationFilter {
                center: None,
                examination: None,
                examination_type: None,
                patient_id: Some(id),
                date_from: None,
                date_to: None,
                page: None,
                per_page: None,
            };
            let mut all = Vec::new();
            let mut page = 1;
            loop {
                let p = examinations::list(db, &filter, &Paging { page, per_page: 500 }).await?;
                let done = p.items.len() < 500;
                for s in p.items {
                    all.push(examinations::get(db, s.id).await?);
                }
                if done {
                    break;
                }
                page += 1;
            }
            if json {
                print_json(&all)?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|e| {
                        let findings: Vec<String> = e.findings.iter().map(|f| f.finding.clone()).collect();
                        vec![
                            e.id.to_string(),
                            e.date.map(|d| d.to_string()).unwrap_or_default(),
                            e.examination.clone(),
                            e.center.clone(),
                            findings.join(", "),
                        ]
                    })
                    .collect();
                print_table(&["id", "date", "examination", "center", "findings"], &rows);
            }
        }
        QueryCommand::ExpectedInterventions { indication } => {
            let entries = terminology::expected_interventions(db, &indication).await?;
            if json {
                print_json(&entries)?;
            } else {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| vec![e.name.clone(), e.name_en.clone().unwrap_or_default(), e.name_de.clone().unwrap_or_default()])
                    .collect();
                print_table(&["intervention", "english", "german"], &rows);
            }
        }
        QueryCommand::Segments { video, label } => {
            let list = segments::list(db, video, &SegmentFilter { label, source: None }).await?;
            if json {
                print_json(&list)?;
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.to_string(),
                            s.label.clone(),
                            s.start_frame.to_string(),
                            s.end_frame.to_string(),
                            s.source.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(&["id", "label", "start_frame", "end_frame", "source"], &rows);
            }
        }
        QueryCommand::Classifications => {
            let list = terminology::classifications(db).await?;
            if json {
                print_json(&list)?;
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            c.name_en.clone().unwrap_or_default(),
                            c.choices.iter().map(|ch| ch.name.as_str()).collect::<Vec<_>>().join(", "),
                        ]
                    })
                    .collect();
                print_table(&["classification", "english", "choices"], &rows);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
