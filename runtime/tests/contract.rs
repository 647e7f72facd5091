//! Every source and sink of the runtime passes the shared contract.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use rivulet::contract::{check_output, check_source};
use rivulet::sink::FileOutput;
use rivulet::source::{FileSource, Generator};
use serde::Deserialize;

#[test]
fn csv_file_source() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.csv");
    let mut text = String::new();
    for i in 0..500 {
        text.push_str(&format!("k{},{}\n", i % 7, i * 3));
        if i % 50 == 0 {
            text.push_str("garbage line\n\n");
        }
    }
    text.push_str("last,1"); // no final newline
    std::fs::write(&p, text).unwrap();
    check_source(|| {
        FileSource::csv(&p, |f: &[&str]| match f {
            [k, v] => Ok((k.to_string(), v.parse::<i64>().map_err(|e| e.to_string())?)),
            _ => Err("two fields expected".into()),
        })
    })
    .unwrap();
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Reading {
    id: String,
    v: f64,
}

#[test]
fn json_lines_file_source() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.jsonl");
    let mut text = String::new();
    for i in 0..300 {
        text.push_str(&format!("{{\"id\":\"s{}\",\"v\":{}.5}}\n", i % 5, i));
        if i % 40 == 0 {
            text.push_str("{not json}\n");
        }
    }
    std::fs::write(&p, text).unwrap();
    check_source(|| FileSource::<Reading>::json_lines(&p)).unwrap();
}

#[test]
fn generator_source() {
    check_source(|| Ok(Generator::new(Some(777), |i| (i, i * i)))).unwrap();
}

#[test]
fn file_output() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.txt");
    check_output(|| FileOutput::new(&p), || std::fs::read(&p).unwrap_or_default()).unwrap();
}
