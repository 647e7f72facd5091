//! Tests of the file source: every line parsed or counted, positions that
//! resume, a dead-letter file that holds each entry once.

use super::*;
use std::io::Write;

fn parse(f: &[&str]) -> std::result::Result<(String, i64), String> {
    match f {
        [a, b] => Ok((a.to_string(), b.parse().map_err(|_| format!("bad number `{b}`"))?)),
        _ => Err(format!("expected 2 fields, found {}", f.len())),
    }
}

fn ctx(restored: bool) -> SourceContext {
    SourceContext { name: "t".into(), ingest: None, restored, retain_checkpoints: 1 }
}

fn drain<T: Send + 'static>(s: &mut FileSource<T>, out: &mut Vec<T>) {
    while s.poll_batch(out, 10).unwrap() != Poll::End {}
}

#[test]
fn reads_counts_bad_lines_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.csv");
    let mut f = File::create(&p).unwrap();
    write!(f, "a,1\nb,x\n\nc,3\r\nd,4").unwrap();
    let dl = dir.path().join("dead.txt");
    let mut s = FileSource::csv(&p, parse).unwrap().dead_letter(&dl).unwrap();
    s.open(&ctx(false)).unwrap();
    let mut out = Vec::new();
    assert_eq!(s.poll_batch(&mut out, 1).unwrap(), Poll::Ready);
    let pos = s.position();
    drain(&mut s, &mut out);
    assert_eq!(out, vec![("a".into(), 1), ("c".into(), 3), ("d".into(), 4)]);
    assert_eq!(s.bad_lines(), 2, "a bad number and an empty line");
    let dead = std::fs::read_to_string(&dl).unwrap();
    assert!(dead.contains(":2: bad number `x`: b,x"), "{dead}");
    assert!(dead.contains(":3: empty line: \n"), "{dead}");

    let mut s2 = FileSource::csv(&p, parse).unwrap();
    s2.restore(&pos).unwrap();
    let mut rest = Vec::new();
    drain(&mut s2, &mut rest);
    assert_eq!(rest, out[1..].to_vec());
}

/// Guards that no kind of line vanishes uncounted: empty lines (also CRLF
/// ones) are malformed, a BOM and CRLF ends are read, a final line without
/// newline is read, a trailing newline is not an empty line, and non-UTF-8
/// is counted.
#[test]
fn every_line_is_parsed_or_counted() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.csv");
    std::fs::write(&p, b"\xEF\xBB\xBFa,1\r\n\r\nb,2\n\nc\xff,3\nd,4\n").unwrap();
    let mut s = FileSource::csv(&p, parse).unwrap();
    s.open(&ctx(false)).unwrap();
    let mut out = Vec::new();
    drain(&mut s, &mut out);
    assert_eq!(out, vec![("a".into(), 1), ("b".into(), 2), ("d".into(), 4)]);
    assert_eq!(s.bad_lines(), 3, "two empty lines and one not UTF-8");

    std::fs::write(&p, b"a,1\nb,2").unwrap();
    let mut s = FileSource::csv(&p, parse).unwrap();
    let mut out = Vec::new();
    drain(&mut s, &mut out);
    assert_eq!(out, vec![("a".into(), 1), ("b".into(), 2)]);
    assert_eq!(s.bad_lines(), 0);
}

/// Guards the line limit: a multi-MB line (with or without a newline after
/// it) is counted, dead-lettered truncated with its length, and the good
/// lines around it are all read; the position after it resumes past it.
#[test]
fn an_over_long_line_is_skipped_and_dead_lettered_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.csv");
    let long = 3 * READ_CHUNK + 17;
    let mut bytes = b"a,1\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', long));
    bytes.extend_from_slice(b"\nb,2\n");
    bytes.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES + 1));
    bytes.extend_from_slice(b"\nc,3\n");
    bytes.extend(std::iter::repeat_n(b'z', long));
    std::fs::write(&p, &bytes).unwrap();
    let dl = dir.path().join("dead.txt");
    let mut s = FileSource::csv(&p, parse).unwrap().dead_letter(&dl).unwrap();
    s.open(&ctx(false)).unwrap();
    let mut out = Vec::new();
    drain(&mut s, &mut out);
    assert_eq!(out, vec![("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
    assert_eq!(s.bad_lines(), 3);
    assert_eq!(s.buf.len(), READ_CHUNK, "the read buffer never grows");
    let dead = std::fs::read_to_string(&dl).unwrap();
    let lines: Vec<&str> = dead.lines().collect();
    assert_eq!(lines.len(), 3, "{dead:.300}");
    let x = "x".repeat(LONG_LINE_PREFIX);
    assert_eq!(lines[0], format!("{}:2: {}: {x}", p.display(), long_line_reason(long as u64)));
    assert!(lines[1].starts_with(&format!("{}:4: line of {} bytes", p.display(), MAX_LINE_BYTES + 1)));
    assert!(lines[2].starts_with(&format!("{}:6: line of {long} bytes", p.display())));
    assert!(dead.len() < 4 * LONG_LINE_PREFIX);
    assert_eq!(s.offset, bytes.len() as u64);
}

/// Guards exactly-once dead letters: a run resumed from a checkpoint cuts
/// the dead-letter file back to the checkpointed length, so the entries
/// written after the checkpoint are not duplicated by the replay.
#[test]
fn a_resumed_run_does_not_repeat_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.csv");
    std::fs::write(&p, "a,1\nb,x\nc,3\nd,y\ne,5\nf,z\n").unwrap();
    let dl = dir.path().join("dead.txt");
    let mut s = FileSource::csv(&p, parse).unwrap().dead_letter(&dl).unwrap();
    s.open(&ctx(false)).unwrap();
    let mut out = Vec::new();
    s.poll_batch(&mut out, 2).unwrap();
    s.prepare_checkpoint().unwrap();
    let pos = s.position();
    drain(&mut s, &mut out);
    let whole = std::fs::read(&dl).unwrap();
    assert_eq!(String::from_utf8_lossy(&whole).lines().count(), 3);
    drop(s);

    // A "crash" after the checkpoint: the rerun resumes from `pos`.
    let mut s = FileSource::csv(&p, parse).unwrap().dead_letter(&dl).unwrap();
    s.open(&ctx(true)).unwrap();
    s.restore(&pos).unwrap();
    let mut rest = Vec::new();
    drain(&mut s, &mut rest);
    assert_eq!(std::fs::read(&dl).unwrap(), whole);

    // A fresh run starts the file over.
    let mut s = FileSource::csv(&p, parse).unwrap().dead_letter(&dl).unwrap();
    s.open(&ctx(false)).unwrap();
    drain(&mut s, &mut Vec::new());
    assert_eq!(std::fs::read(&dl).unwrap(), whole);
}

/// Guards the limit's boundary: a line of exactly [`MAX_LINE_BYTES`] is
/// handed to the parser, one byte more is not, whether or not the read
/// buffer held it whole when it was met.
#[test]
fn a_line_at_the_limit_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.txt");
    let mut bytes = vec![b'a'; MAX_LINE_BYTES];
    bytes.push(b'\n');
    bytes.extend(std::iter::repeat_n(b'b', MAX_LINE_BYTES + 1));
    bytes.push(b'\n');
    bytes.extend(std::iter::repeat_n(b'c', MAX_LINE_BYTES));
    std::fs::write(&p, &bytes).unwrap();
    let mut s = FileSource::lines(&p, |l: &[u8]| Ok(l.len())).unwrap();
    s.open(&ctx(false)).unwrap();
    let mut out = Vec::new();
    drain(&mut s, &mut out);
    assert_eq!(out, vec![MAX_LINE_BYTES, MAX_LINE_BYTES]);
    assert_eq!(s.bad_lines(), 1);
}

/// What a line becomes when read on its own: the reference the source's
/// region-at-a-time reading must match.
fn one_line(line: &[u8], first: bool) -> Option<(String, i64)> {
    let line = if first { line.strip_prefix(UTF8_BOM).unwrap_or(line) } else { line };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).ok().filter(|t| !t.is_empty())?;
    parse(&text.split(',').collect::<Vec<_>>()).ok()
}

/// [`parse`] of a whole line into `out`, which it changes before it
/// finds out whether the line is good.
fn fill(line: &str, out: &mut (String, i64)) -> std::result::Result<(), String> {
    let fields: Vec<&str> = line.split(',').collect();
    out.0 = fields[0].to_string();
    *out = parse(&fields)?;
    Ok(())
}

/// [`fill`] of a line with the fields the source split it into: those
/// between its commas, unless it holds a quote or too many to hand over.
fn fill_split(line: &str, fields: Option<&[&str]>, out: &mut (String, i64)) -> std::result::Result<(), String> {
    let split: Vec<&str> = line.split(',').collect();
    match fields {
        Some(f) => {
            assert!(!line.contains('"') && f == split, "{line:?} split as {f:?}");
            *out = parse(f)?;
            Ok(())
        }
        None => {
            assert!(line.contains('"') || split.len() > MAX_CSV_FIELDS, "{line:?} not split");
            fill(line, out)
        }
    }
}

/// [`fill`] straight from the bytes of a plain line `text,integer\n`,
/// for [`FileSource::csv_plain`].
fn read_pair(b: &[u8], out: &mut (String, i64)) -> Option<usize> {
    let mut f = crate::text::PlainFields::new(b);
    let a = std::str::from_utf8(f.next(b',')?).ok()?;
    *out = (a.to_string(), crate::text::parse_i64_bytes(f.next(b'\n')?)?);
    Some(f.consumed())
}

/// [`read_pair`] of text, for [`FileSource::csv_plain_text`].
fn read_pair_text(t: &str, out: &mut (String, i64)) -> Option<usize> {
    read_pair(t.as_bytes(), out)
}

proptest::proptest! {
    /// Guards the UTF-8 check of whole regions: any mix of good lines,
    /// bad numbers, CRLF, empty lines, multi-byte and invalid bytes (also
    /// a BOM), read in batches of any size and resumed at any position,
    /// gives each line's record or counts it, as reading line by line does
    /// (also a line of more fields than a CSV parser takes).
    #[test]
    fn any_lines_read_in_any_batches_as_line_by_line(
        pieces in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(&b"a,1"[..]), proptest::strategy::Just(&b"\xc3\xa9,22"[..]),
            proptest::strategy::Just(&b"b,x"[..]), proptest::strategy::Just(&b"\xff,3"[..]),
            proptest::strategy::Just(&b"\xc3,4"[..]), proptest::strategy::Just(&b"\r"[..]),
            proptest::strategy::Just(&b"\n"[..]), proptest::strategy::Just(&b"\n"[..]),
            proptest::strategy::Just(&b"\xEF\xBB\xBF"[..]),
            proptest::strategy::Just(&b"a-sensor-with-a-long-name,1234567890"[..]),
            proptest::strategy::Just(&b",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,"[..]),
            proptest::strategy::Just(&b"\"q\",5"[..]), proptest::strategy::Just(&b"b,-7"[..]),
            proptest::strategy::Just(&b"c,+8"[..]), proptest::strategy::Just(&b"d,9,"[..]),
        ], 0..60),
        batch in 1usize..20,
        cut in 0usize..20,
    ) {
        let content: Vec<u8> = pieces.concat();
        let mut pieces = content.split(|&b| b == b'\n').collect::<Vec<_>>();
        if content.ends_with(b"\n") || content.is_empty() {
            pieces.pop();
        }
        let want: Vec<_> = pieces.iter().enumerate().filter_map(|(i, l)| one_line(l, i == 0)).collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.csv");
        std::fs::write(&p, &content).unwrap();
        let mut s = FileSource::csv(&p, parse).unwrap();
        let mut got = Vec::new();
        let mut pos = None;
        while s.poll_batch(&mut got, batch).unwrap() != Poll::End {
            if got.len() >= cut && pos.is_none() {
                pos = Some((s.position(), got.len()));
            }
        }
        proptest::prop_assert_eq!(&got, &want);
        proptest::prop_assert_eq!(s.bad_lines() as usize, pieces.len() - want.len());
        // Into records for the source task to stamp, as the engine reads.
        let mut s = FileSource::csv(&p, parse).unwrap();
        let mut recs = Vec::new();
        while s.poll_records(&mut recs, batch).unwrap() != Poll::End {}
        proptest::prop_assert!(recs.iter().all(|r| r.ts == 0 && r.wm == 0));
        proptest::prop_assert_eq!(recs.into_iter().map(|r| r.value).collect::<Vec<_>>(), want.clone());
        // Filled in place: a line that fails half way leaves nothing.
        let mut s = FileSource::text_lines_into(&p, fill).unwrap();
        let (mut recs, mut values) = (Vec::new(), Vec::new());
        while s.poll_records(&mut recs, batch).unwrap() != Poll::End {}
        while FileSource::text_lines_into(&p, fill).unwrap().poll_batch(&mut values, usize::MAX).unwrap() != Poll::End {}
        proptest::prop_assert_eq!(recs.into_iter().map(|r| r.value).collect::<Vec<_>>(), want.clone());
        proptest::prop_assert_eq!(&values, &want);
        proptest::prop_assert_eq!(s.bad_lines() as usize, pieces.len() - want.len());
        // Split by the pass that finds the line ends, filled in place.
        let mut s = FileSource::csv_into(&p, fill_split).unwrap();
        let mut recs = Vec::new();
        while s.poll_records(&mut recs, batch).unwrap() != Poll::End {}
        proptest::prop_assert_eq!(recs.into_iter().map(|r| r.value).collect::<Vec<_>>(), want.clone());
        proptest::prop_assert_eq!(s.bad_lines() as usize, pieces.len() - want.len());
        // Plain lines read straight from their bytes or their text, the
        // others as `csv_into` reads them; the same positions.
        let plain = [
            FileSource::csv_plain(&p, read_pair, fill_split).unwrap(),
            FileSource::csv_plain_text(&p, read_pair_text, fill_split).unwrap(),
        ];
        for mut s in plain {
            let (mut recs, mut plain_pos) = (Vec::new(), None);
            while s.poll_records(&mut recs, batch).unwrap() != Poll::End {
                if recs.len() >= cut && plain_pos.is_none() {
                    plain_pos = Some((s.position(), recs.len()));
                }
            }
            proptest::prop_assert_eq!(recs.into_iter().map(|r| r.value).collect::<Vec<_>>(), want.clone());
            proptest::prop_assert_eq!(s.bad_lines() as usize, pieces.len() - want.len());
            proptest::prop_assert_eq!(&plain_pos, &pos);
        }
        if let Some((pos, n)) = pos {
            let mut s = FileSource::csv(&p, parse).unwrap();
            s.restore(&pos).unwrap();
            let mut rest = Vec::new();
            while s.poll_batch(&mut rest, batch).unwrap() != Poll::End {}
            proptest::prop_assert_eq!(&rest[..], &want[n..]);
        }
    }
}
