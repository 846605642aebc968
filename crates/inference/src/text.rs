//! Turning generated token bytes into text: UTF-8 that may arrive split across tokens, and
//! stop sequences that may arrive split across chunks.

/// Collects token bytes and releases only complete UTF-8 characters.
#[derive(Debug, Default)]
pub struct Utf8Buffer {
    pending: Vec<u8>,
}

impl Utf8Buffer {
    /// Adds bytes; returns the text that is complete so far. Invalid bytes become U+FFFD.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                        None => {
                            // An incomplete character: wait for the next token.
                            self.pending.drain(..valid);
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left when generation ends.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// What a [`StopMatcher`] lets through.
#[derive(Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Text safe to send (possibly empty: held back as a stop sequence may be starting).
    Emit(String),
    /// A stop sequence appeared: send this text, then end.
    Stopped(String),
}

/// Holds back text that might be the start of a stop sequence, and cuts at the first one.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> StopOutcome {
        if self.stops.is_empty() {
            return StopOutcome::Emit(text.to_owned());
        }
        self.held.push_str(text);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let before = self.held[..at].to_owned();
            self.held.clear();
            return StopOutcome::Stopped(before);
        }
        // Keep the longest tail that is a prefix of some stop sequence.
        let keep = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let emit = self.held[..keep].to_owned();
        self.held.drain(..keep);
        StopOutcome::Emit(emit)
    }

    /// Text held back when generation ends without a stop sequence.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_tokens() {
        let mut buffer = Utf8Buffer::default();
        let bytes = "héllo 👋".as_bytes();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&buffer.push(&[*b]));
        }
        out.push_str(&buffer.finish());
        assert_eq!(out, "héllo 👋");
        assert_eq!(buffer.push(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(buffer.push(&[0xf0, 0x9f]), "");
        assert_eq!(buffer.finish(), "\u{fffd}");
    }

    #[test]
    fn stops_split_across_chunks() {
        let mut m = StopMatcher::new(vec!["</end>".into(), "STOP".into()]);
        assert_eq!(m.push("hello </"), StopOutcome::Emit("hello ".into()));
        assert_eq!(m.push("en"), StopOutcome::Emit(String::new()));
        assert_eq!(m.push("d> more"), StopOutcome::Stopped(String::new()));
        let mut m = StopMatcher::new(vec!["STOP".into()]);
        assert_eq!(m.push("abc STOP def"), StopOutcome::Stopped("abc ".into()));
    }

    #[test]
    fn held_text_is_released_when_it_cannot_stop() {
        let mut m = StopMatcher::new(vec!["STOP".into()]);
        assert_eq!(m.push("ST"), StopOutcome::Emit(String::new()));
        assert_eq!(m.push("AY"), StopOutcome::Emit("STAY".into()));
        assert_eq!(m.push("S"), StopOutcome::Emit(String::new()));
        assert_eq!(m.finish(), "S");
        let mut none = StopMatcher::new(vec![]);
        assert_eq!(none.push("x"), StopOutcome::Emit("x".into()));
    }
}
