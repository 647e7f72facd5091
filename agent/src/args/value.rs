//! Value parsers for flags that are not durations or sizes: broker URLs,
//! rates and fractions.

/// An `mqtt://host:port` URL the engine can connect to (clap value parser).
///
/// # Errors
/// The runtime's reason the URL is not one.
pub fn mqtt_url(text: &str) -> Result<String, String> {
    match rivulet::mqtt::parse_url(text) {
        Ok(_) => Ok(text.to_string()),
        Err(rivulet::Error::Config { reason, .. }) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

/// A finite rate above zero, in events per second (clap value parser).
///
/// # Errors
/// Not a number, not finite, or not above zero.
pub fn positive_rate(text: &str) -> Result<f64, String> {
    let v: f64 = text.trim().parse().map_err(|_| format!("`{text}` is not a number"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("`{text}` must be a number above 0"));
    }
    Ok(v)
}

/// A share between 0 and 1 inclusive (clap value parser).
///
/// # Errors
/// Not a number, or outside 0..=1.
pub fn fraction(text: &str) -> Result<f64, String> {
    let v: f64 = text.trim().parse().map_err(|_| format!("`{text}` is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{text}` must be between 0 and 1"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Guards issue 12 §12: a URL that is not an MQTT URL is refused at
    // parse time, before any connection is tried.
    #[test]
    fn mqtt_urls() {
        for u in ["mqtt://127.0.0.1:1883", "tcp://broker:1883", "broker:1883", "broker"] {
            assert_eq!(mqtt_url(u).as_deref(), Ok(u));
        }
        for u in ["http://x:1", "ws://x:1", "mqtt://:1883", "mqtt://h:port", "mqtt://h:99999"] {
            assert!(mqtt_url(u).is_err(), "{u}");
        }
    }

    // Guards that a rate of 0, a negative or non-finite rate (a simulator
    // that never sends) and fractions outside 0..=1 are refused.
    #[test]
    fn rates_and_fractions() {
        assert_eq!(positive_rate("2000"), Ok(2000.0));
        for r in ["0", "-1", "NaN", "inf", "x"] {
            assert!(positive_rate(r).is_err(), "{r}");
        }
        assert_eq!(fraction("0"), Ok(0.0));
        assert_eq!(fraction("1"), Ok(1.0));
        for f in ["-0.1", "1.5", "NaN", "x"] {
            assert!(fraction(f).is_err(), "{f}");
        }
    }
}
