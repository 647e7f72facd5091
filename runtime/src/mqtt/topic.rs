//! Topic templates: `sensors/{sensor_id}/temp` subscribes to
//! `sensors/+/temp` and captures the second level as the field `sensor_id`;
//! for a sink, the same template renders a topic from a record's fields.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Lit(String),
    Field(String),
    Plus,
    Hash,
}

/// A parsed topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    levels: Vec<Level>,
}

impl TopicTemplate {
    /// Parses a template; `field` names the config field in errors.
    ///
    /// # Errors
    /// An empty template, a `{` level that is not a whole `{name}`, or a
    /// `#` that is not last.
    pub fn parse(field: &'static str, text: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::config(field, "the topic is empty"));
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let level = match *p {
                "+" => Level::Plus,
                "#" if i + 1 == parts.len() => Level::Hash,
                "#" => return Err(Error::config(field, format!("`#` must be the last level in `{text}`"))),
                p if p.starts_with('{') && p.ends_with('}') && p.len() > 2 => {
                    let name = &p[1..p.len() - 1];
                    if name.contains(['{', '}', '+', '#']) {
                        return Err(Error::config(field, format!("bad field name `{name}` in `{text}`")));
                    }
                    Level::Field(name.to_string())
                }
                p if p.contains(['{', '}', '+', '#']) => {
                    return Err(Error::config(
                        field,
                        format!(
                            "level `{p}` of `{text}` mixes text with a wildcard or field; a field takes a whole level"
                        ),
                    ))
                }
                p => Level::Lit(p.to_string()),
            };
            levels.push(level);
        }
        Ok(Self { levels })
    }

    /// Parses a template to publish to: fields are filled from each record,
    /// wildcards (`+`, `#`) are refused (a PUBLISH topic cannot hold them).
    ///
    /// # Errors
    /// As [`TopicTemplate::parse`], and a wildcard level.
    pub fn parse_publish(field: &'static str, text: &str) -> Result<Self> {
        let t = Self::parse(field, text)?;
        if t.levels.iter().any(|l| matches!(l, Level::Plus | Level::Hash)) {
            return Err(Error::config(
                field,
                format!("`{text}` holds a wildcard (`+` or `#`); a topic to publish to names each level"),
            ));
        }
        Ok(t)
    }

    /// Checks that the template captures exactly the fields a job needs:
    /// each of `needed` is a `{field}` level (so `sensors/#` cannot stand
    /// for `sensors/{sensor_id}`), and no other placeholder appears.
    ///
    /// # Errors
    /// [`Error::Config`] naming `field` and the missing or unknown name.
    pub fn check_fields(&self, field: &'static str, needed: &[String]) -> Result<()> {
        let have: Vec<&str> = self.fields().collect();
        let shown = self.filter();
        if let Some(n) = needed.iter().find(|n| !have.contains(&n.as_str())) {
            return Err(Error::config(
                field,
                format!(
                    "the template (subscribing to `{shown}`) does not capture `{{{n}}}`: put `{{{n}}}` in place of \
                     the topic level that holds it, e.g. `sensors/{{{n}}}/temp`"
                ),
            ));
        }
        if let Some(u) = have.iter().find(|h| !needed.iter().any(|n| n == *h)) {
            let known: Vec<String> = needed.iter().map(|n| format!("{{{n}}}")).collect();
            return Err(Error::config(
                field,
                format!("unknown placeholder `{{{u}}}`; this job captures {}", known.join(", ")),
            ));
        }
        Ok(())
    }

    /// The subscription filter: fields become `+`.
    pub fn filter(&self) -> String {
        let parts: Vec<&str> = self
            .levels
            .iter()
            .map(|l| match l {
                Level::Lit(s) => s.as_str(),
                Level::Field(_) | Level::Plus => "+",
                Level::Hash => "#",
            })
            .collect();
        parts.join("/")
    }

    /// Names of the fields, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.levels.iter().filter_map(|l| match l {
            Level::Field(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Matches `topic`, pushing `(field, value)` pairs into `out`. Returns
    /// false when the topic does not have the template's shape.
    pub fn capture<'t>(&'t self, topic: &'t str, out: &mut Vec<(&'t str, &'t str)>) -> bool {
        let mut parts = topic.split('/');
        for l in &self.levels {
            match l {
                Level::Hash => return true,
                _ => {
                    let Some(p) = parts.next() else { return false };
                    match l {
                        Level::Lit(s) if s != p => return false,
                        Level::Field(n) => out.push((n.as_str(), p)),
                        _ => {}
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// Renders a topic, asking `value` for each field.
    ///
    /// # Errors
    /// A field without a value, or a value that would change the topic's
    /// shape (contains `/`, `+` or `#`), or a wildcard in the template.
    pub fn render(&self, mut value: impl FnMut(&str) -> Option<String>) -> std::result::Result<String, String> {
        let mut out = String::new();
        for (i, l) in self.levels.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            match l {
                Level::Lit(s) => out.push_str(s),
                Level::Field(n) => {
                    let v = value(n).ok_or_else(|| format!("no field `{n}` for the topic"))?;
                    if v.is_empty() || v.contains(['/', '+', '#']) {
                        return Err(format!("field `{n}` = `{v}` cannot be a topic level"));
                    }
                    out.push_str(&v);
                }
                Level::Plus | Level::Hash => return Err("a topic to publish to cannot hold wildcards".into()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_capture_render() {
        let t = TopicTemplate::parse("topic", "sensors/{sensor_id}/temp").unwrap();
        assert_eq!(t.filter(), "sensors/+/temp");
        let mut c = Vec::new();
        assert!(t.capture("sensors/s7/temp", &mut c));
        assert_eq!(c, vec![("sensor_id", "s7")]);
        c.clear();
        assert!(!t.capture("sensors/s7/humidity", &mut c));
        assert!(!t.capture("sensors/s7/temp/x", &mut Vec::new()));
        assert!(!t.capture("sensors/s7", &mut Vec::new()));
        assert_eq!(t.render(|_| Some("s1".into())).unwrap(), "sensors/s1/temp");
        assert!(t.render(|_| Some("a/b".into())).is_err());
        let h = TopicTemplate::parse("topic", "a/{x}/#").unwrap();
        assert_eq!(h.filter(), "a/+/#");
        assert!(h.capture("a/1/b/c", &mut Vec::new()));
        assert!(TopicTemplate::parse("topic", "a/x{y}").is_err());
        assert!(TopicTemplate::parse("topic", "#/a").is_err());
    }

    /// Guards issue 12 §12: a template that cannot capture the key, an
    /// unknown placeholder, and a publish template with wildcards are
    /// refused at start, naming the flag.
    #[test]
    fn templates_that_cannot_work_are_refused() {
        let need = ["sensor_id".to_string()];
        let check = |t: &str| TopicTemplate::parse("--topic", t).unwrap().check_fields("--topic", &need);
        check("sensors/{sensor_id}/temp").unwrap();
        check("sensors/{sensor_id}/#").unwrap();
        let e = check("sensors/#").unwrap_err().to_string();
        assert!(e.contains("--topic") && e.contains("{sensor_id}"), "{e}");
        let e = check("sensors/{sensor_id}/{bogus}").unwrap_err().to_string();
        assert!(e.contains("--topic") && e.contains("{bogus}"), "{e}");
        TopicTemplate::parse_publish("--publish", "averages/{sensor_id}").unwrap();
        for t in ["averages/+", "averages/#", "+/{sensor_id}"] {
            let e = TopicTemplate::parse_publish("--publish", t).unwrap_err().to_string();
            assert!(e.contains("--publish") && e.contains("wildcard"), "{t}: {e}");
        }
    }
}
