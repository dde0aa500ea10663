//! Bytes of a container's output → log events: one per line, lines
//! longer than CloudWatch takes split, and events → PutLogEvents-sized
//! batches. Pure functions.
//!
//! Output is bytes; events are text. Invalid UTF-8 becomes U+FFFD (three
//! bytes) as it is decoded, and sizes are counted after decoding, so a
//! split never cuts a character and never makes an event too large.

use berth_store::LOG_EVENT_OVERHEAD_BYTES;

/// The largest message of one event: CloudWatch's 256 KiB per event less
/// its 26 bytes of overhead (what Docker's awslogs driver splits at too).
pub const MAX_MESSAGE_BYTES: usize = 262_144 - LOG_EVENT_OVERHEAD_BYTES as usize;
/// PutLogEvents' limits: events, and bytes (messages plus 26 each).
pub const MAX_BATCH_EVENTS: usize = 10_000;
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// U+FFFD, what an invalid byte sequence decodes to, is this long in UTF-8.
const REPLACEMENT_BYTES: usize = 3;

/// One event's text and where it ends in the bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Offset just past the event's bytes (past its newline, if it had one).
    pub end: usize,
    pub message: String,
}

/// The events in `buf`, and how many of its bytes they account for.
///
/// Each line (without its `\n`) is an event; empty lines are skipped, as
/// CloudWatch holds no empty events. A line whose text is longer than
/// [`MAX_MESSAGE_BYTES`] becomes several events. Bytes after the last
/// newline are a line still being written: they are kept (not counted
/// as consumed) unless `flush` is set — the writer is done — or they are
/// already too long for one event, in which case the events they
/// certainly hold are cut off and the rest kept. The same bytes always
/// split the same way, wherever a read happened to stop.
pub fn split(buf: &[u8], flush: bool) -> (Vec<Line>, usize) {
    let mut lines = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                let before = lines.len();
                chunks(&rest[..n], pos, usize::MAX, &mut lines);
                pos += n + 1;
                if lines.len() > before
                    && let Some(last) = lines.last_mut()
                {
                    last.end = pos;
                }
            }
            None if flush => {
                chunks(rest, pos, usize::MAX, &mut lines);
                pos = buf.len();
            }
            None => {
                // A chunk is certain once the bytes after it could not
                // have joined it (a character is at most 4 bytes).
                pos += chunks(rest, pos, rest.len().saturating_sub(MAX_MESSAGE_BYTES + 4), &mut lines);
                break;
            }
        }
    }
    (lines, pos)
}

/// Cuts `line` (which starts at `base` in the buffer) into events of at
/// most [`MAX_MESSAGE_BYTES`] decoded, starting no event at or past
/// `limit`; returns how many bytes the events took.
fn chunks(line: &[u8], base: usize, limit: usize, out: &mut Vec<Line>) -> usize {
    let mut used = 0;
    while used < line.len().min(limit) {
        let n = split_point(&line[used..], MAX_MESSAGE_BYTES);
        out.push(Line { end: base + used + n, message: String::from_utf8_lossy(&line[used..used + n]).into_owned() });
        used += n;
    }
    used
}

/// How many bytes of `bytes` decode to at most `max` bytes of text
/// without cutting a character (at least one character's worth).
pub fn split_point(bytes: &[u8], max: usize) -> usize {
    let mut raw = 0;
    let mut decoded = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if decoded + c.len_utf8() > max {
                return raw.max(c.len_utf8());
            }
            decoded += c.len_utf8();
            raw += c.len_utf8();
        }
        let invalid = chunk.invalid().len();
        if invalid > 0 {
            if decoded + REPLACEMENT_BYTES > max {
                return raw.max(invalid);
            }
            decoded += REPLACEMENT_BYTES;
            raw += invalid;
        }
    }
    raw
}

/// What one event costs against a batch's byte limit.
pub fn cost(message: &str) -> usize {
    message.len() + LOG_EVENT_OVERHEAD_BYTES as usize
}

/// Splits `items` into consecutive runs that each fit one PutLogEvents
/// call: at most [`MAX_BATCH_EVENTS`] events and [`MAX_BATCH_BYTES`].
pub fn batches<T>(items: &[T], message: impl Fn(&T) -> &str) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let c = cost(message(item));
        if i > start && (i - start == MAX_BATCH_EVENTS || bytes + c > MAX_BATCH_BYTES) {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += c;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn messages(lines: &[Line]) -> Vec<&str> {
        lines.iter().map(|l| l.message.as_str()).collect()
    }

    #[test]
    fn lines_end_past_their_newline_and_a_partial_line_waits() {
        let (lines, used) = split(b"one\ntwo\nthr", false);
        assert_eq!(messages(&lines), ["one", "two"]);
        assert_eq!(lines.iter().map(|l| l.end).collect::<Vec<_>>(), [4, 8]);
        assert_eq!(used, 8, "the partial line is not consumed");
        let (lines, used) = split(b"one\ntwo\nthr", true);
        assert_eq!(messages(&lines), ["one", "two", "thr"]);
        assert_eq!((lines[2].end, used), (11, 11));
    }

    #[test]
    fn empty_lines_are_skipped_but_consumed() {
        let (lines, used) = split(b"\n\na\n\n\r\n", false);
        assert_eq!(messages(&lines), ["a", "\r"]);
        assert_eq!(used, 7);
        let (lines, used) = split(b"\n\n\n", false);
        assert!(lines.is_empty());
        assert_eq!(used, 3);
    }

    #[test]
    fn long_lines_split_at_the_event_limit() {
        let mut buf = vec![b'x'; MAX_MESSAGE_BYTES + 1000];
        buf.push(b'\n');
        let (lines, used) = split(&buf, false);
        assert_eq!(lines.iter().map(|l| l.message.len()).collect::<Vec<_>>(), [MAX_MESSAGE_BYTES, 1000]);
        assert_eq!(lines[0].end, MAX_MESSAGE_BYTES);
        assert_eq!((lines[1].end, used), (buf.len(), buf.len()));
        // Exactly the limit is one event.
        let mut buf = vec![b'y'; MAX_MESSAGE_BYTES];
        buf.push(b'\n');
        assert_eq!(split(&buf, false).0.len(), 1);
    }

    #[test]
    fn a_long_partial_line_gives_its_certain_chunks_and_splits_the_same_later() {
        let total = 2 * MAX_MESSAGE_BYTES + 10;
        let whole: Vec<u8> = (0..total).map(|i| b'a' + (i % 26) as u8).chain([b'\n']).collect();
        let (all, _) = split(&whole, false);
        // Read in pieces: a prefix without the newline, then the rest
        // from where the consumed bytes ended.
        for cut in [MAX_MESSAGE_BYTES - 1, MAX_MESSAGE_BYTES + 3, MAX_MESSAGE_BYTES + 5, total - 1, total] {
            let (first, used) = split(&whole[..cut], false);
            let (rest, _) = split(&whole[used..], false);
            let joined: Vec<String> = first.iter().chain(&rest).map(|l| l.message.clone()).collect();
            assert_eq!(joined, messages(&all), "cut at {cut}");
            assert!(first.iter().all(|l| l.end <= used));
        }
    }

    #[test]
    fn splits_never_cut_a_character_or_overflow_after_decoding() {
        // 'é' is 2 bytes: an odd limit cannot fall on a boundary.
        let text = "é".repeat(MAX_MESSAGE_BYTES);
        let (lines, _) = split(text.as_bytes(), true);
        assert!(lines.iter().all(|l| l.message.len() <= MAX_MESSAGE_BYTES && !l.message.contains('\u{fffd}')));
        assert_eq!(lines.iter().map(|l| l.message.as_str()).collect::<String>(), text);
        // Invalid bytes grow to 3 when decoded; the split counts that.
        let bad = vec![0xffu8; MAX_MESSAGE_BYTES];
        let (lines, _) = split(&bad, true);
        assert!(
            lines.iter().all(|l| l.message.len() <= MAX_MESSAGE_BYTES),
            "{:?}",
            lines.iter().map(|l| l.message.len()).collect::<Vec<_>>()
        );
        assert_eq!(lines.iter().map(|l| l.message.chars().count()).sum::<usize>(), MAX_MESSAGE_BYTES);
    }

    #[test]
    fn batches_keep_to_both_limits() {
        let small: Vec<String> = (0..25_000).map(|i| i.to_string()).collect();
        let sizes: Vec<usize> = batches(&small, String::as_str).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10_000, 10_000, 5_000]);
        let big: Vec<String> = (0..9).map(|_| "z".repeat(MAX_MESSAGE_BYTES)).collect();
        let runs = batches(&big, String::as_str);
        assert!(runs.iter().all(|b| b.iter().map(|m| cost(m)).sum::<usize>() <= MAX_BATCH_BYTES));
        assert_eq!(runs.iter().map(|b| b.len()).collect::<Vec<_>>(), [4, 4, 1]);
        assert!(batches(&Vec::<String>::new(), String::as_str).is_empty());
    }
}
