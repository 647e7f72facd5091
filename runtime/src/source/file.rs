//! Line-oriented file source: CSV or JSON lines. Its checkpointed position
//! is the byte offset of the next unread line.

use super::{BadInput, Poll, Source};
use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Most fields a CSV line may have.
pub const MAX_CSV_FIELDS: usize = 32;
const READ_CHUNK: usize = 1 << 20;

type Parse<T> = Box<dyn FnMut(&[u8]) -> std::result::Result<T, String> + Send>;

/// Reads a file line by line, parsing each line into a record.
pub struct FileSource<T> {
    path: PathBuf,
    file: File,
    parse: Parse<T>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    line: u64,
    eof: bool,
    bad: BadInput,
}

#[derive(Serialize, Deserialize)]
struct Position {
    offset: u64,
    line: u64,
}

impl<T: Send + 'static> FileSource<T> {
    /// Headerless CSV without quoting: `parse` receives a line's fields.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn csv(
        path: impl AsRef<Path>,
        mut parse: impl FnMut(&[&str]) -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<Self> {
        Self::lines(path, move |line: &[u8]| {
            let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
            let text = text.strip_suffix('\r').unwrap_or(text);
            let mut fields: heapless::Vec<&str, MAX_CSV_FIELDS> = heapless::Vec::new();
            // A byte loop beats memchr on fields this short.
            let mut start = 0;
            for (i, &b) in text.as_bytes().iter().enumerate() {
                if b == b',' {
                    fields.push(&text[start..i]).map_err(|_| format!("more than {MAX_CSV_FIELDS} fields"))?;
                    start = i + 1;
                }
            }
            fields.push(&text[start..]).map_err(|_| format!("more than {MAX_CSV_FIELDS} fields"))?;
            parse(&fields)
        })
    }

    /// Lines parsed by `parse` (raw bytes without the newline).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn lines(
        path: impl AsRef<Path>,
        parse: impl FnMut(&[u8]) -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let bad = BadInput::new(path.display().to_string());
        Ok(Self {
            path,
            file,
            parse: Box::new(parse),
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            offset: 0,
            line: 0,
            eof: false,
            bad,
        })
    }

    /// Sends malformed lines to `path` as well as counting them.
    ///
    /// # Errors
    /// The dead-letter file cannot be opened.
    pub fn dead_letter(mut self, path: &Path) -> Result<Self> {
        self.bad = self.bad.with_dead_letter(path)?;
        Ok(self)
    }

    /// Malformed lines seen so far.
    pub fn bad_lines(&self) -> u64 {
        self.bad.count()
    }

    fn fill(&mut self) -> Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A line longer than the buffer: grow it.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.file.read(&mut self.buf[self.end..]).map_err(|e| Error::io(&self.path, e))?;
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        Ok(())
    }
}

impl<T: DeserializeOwned + Send + 'static> FileSource<T> {
    /// One JSON object per line, deserialized into `T`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn json_lines(path: impl AsRef<Path>) -> Result<Self> {
        Self::lines(path, |line: &[u8]| serde_json::from_slice(line).map_err(|e| e.to_string()))
    }
}

impl<T: Send + 'static> Source for FileSource<T> {
    type Item = T;

    fn poll_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<Poll> {
        let mut wrote_bad = false;
        let target = out.len().saturating_add(max);
        while out.len() < target {
            let nl = memchr::memchr(b'\n', &self.buf[self.start..self.end]);
            let (line_end, next) = match nl {
                Some(i) => (self.start + i, self.start + i + 1),
                None if !self.eof => {
                    self.fill()?;
                    continue;
                }
                None if self.start < self.end => (self.end, self.end), // last line without newline
                None => break,
            };
            self.line += 1;
            let line = &self.buf[self.start..line_end];
            if !(line.is_empty() || line == b"\r") {
                match (self.parse)(line) {
                    Ok(v) => out.push(v),
                    Err(reason) => {
                        let raw = line.to_vec();
                        self.bad.report(self.line, &reason, &raw)?;
                        wrote_bad = true;
                    }
                }
            }
            self.offset += (next - self.start) as u64;
            self.start = next;
        }
        if wrote_bad {
            self.bad.flush()?;
        }
        if self.eof && self.start >= self.end {
            return Ok(Poll::End);
        }
        Ok(Poll::Ready)
    }

    fn bad_records(&self) -> u64 {
        self.bad.count()
    }

    fn position(&self) -> Vec<u8> {
        postcard::to_allocvec(&Position { offset: self.offset, line: self.line }).unwrap_or_default()
    }

    fn restore(&mut self, position: &[u8]) -> Result<()> {
        let p: Position = postcard::from_bytes(position).map_err(|e| Error::Corrupt {
            what: format!("position of {}", self.path.display()),
            reason: e.to_string(),
        })?;
        self.file.seek(SeekFrom::Start(p.offset)).map_err(|e| Error::io(&self.path, e))?;
        self.offset = p.offset;
        self.line = p.line;
        self.start = 0;
        self.end = 0;
        self.eof = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn parse(f: &[&str]) -> std::result::Result<(String, i64), String> {
        match f {
            [a, b] => Ok((a.to_string(), b.parse().map_err(|_| format!("bad number `{b}`"))?)),
            _ => Err(format!("expected 2 fields, found {}", f.len())),
        }
    }

    #[test]
    fn reads_counts_bad_lines_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.csv");
        let mut f = File::create(&p).unwrap();
        write!(f, "a,1\nb,x\n\nc,3\r\nd,4").unwrap();
        let dl = dir.path().join("dead.txt");
        let mut s = FileSource::csv(&p, parse).unwrap().dead_letter(&dl).unwrap();
        let mut out = Vec::new();
        assert_eq!(s.poll_batch(&mut out, 1).unwrap(), Poll::Ready);
        let pos = s.position();
        while s.poll_batch(&mut out, 10).unwrap() != Poll::End {}
        assert_eq!(out, vec![("a".into(), 1), ("c".into(), 3), ("d".into(), 4)]);
        assert_eq!(s.bad_lines(), 1);
        let dead = std::fs::read_to_string(&dl).unwrap();
        assert!(dead.contains(":2: bad number `x`: b,x"), "{dead}");

        let mut s2 = FileSource::csv(&p, parse).unwrap();
        s2.restore(&pos).unwrap();
        let mut rest = Vec::new();
        while s2.poll_batch(&mut rest, 10).unwrap() != Poll::End {}
        assert_eq!(rest, out[1..].to_vec());
    }
}
