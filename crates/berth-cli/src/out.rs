//! Writing to stdout for people and pipes: a closed pipe (`berth … | head
//! -1`) ends the program quietly instead of panicking, and text that came
//! from the server (names, log lines) is printed with its control
//! characters escaped, so it cannot move the cursor, clear the screen or
//! retitle the terminal.

use std::borrow::Cow;
use std::io::Write as _;

/// Prints a line, like `println!`, through [`write_line`].
macro_rules! outln {
    () => { $crate::out::write_line("") };
    ($($arg:tt)*) => { $crate::out::write_line(&format!($($arg)*)) };
}
pub(crate) use outln;

/// Writes `line` and a newline to stdout. A closed stdout ends the
/// program with status 0 (what a reader that stopped reading asked for);
/// another write error ends it with status 1 and the reason on stderr.
pub fn write_line(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        exit_on(&e);
    }
}

/// Ends the program for a failed write to stdout.
pub fn exit_on(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("Error: cannot write to stdout: {e}");
    std::process::exit(1);
}

/// `s` with every control character escaped (`\n`, `\t`, `\u{1b}`, ...).
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_but(s, |_| false)
}

/// A log line as printed: control characters escaped, but tabs kept.
pub fn escape_log(s: &str) -> Cow<'_, str> {
    escape_but(s, |c| c == '\t')
}

fn escape_but(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && !keep(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if c.is_control() && !keep(c) { c.escape_default().to_string() } else { c.to_string() }).collect())
}

/// Columns wider than this are not padded (a 100,000-character name
/// prints whole, at the end of its column, without aligning the rest).
const MAX_COLUMN: usize = 80;

/// Prints rows under headers in aligned columns, cells escaped.
pub fn table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) {
    let rows: Vec<Vec<Cow<'_, str>>> = rows.iter().map(|r| r.iter().map(|c| escape(c)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count()).min(MAX_COLUMN);
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(c);
            text.extend(std::iter::repeat_n(' ', w.saturating_sub(c.chars().count())));
        }
        write_line(text.trim_end());
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(|c| c.as_ref()).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("web"), "web");
        assert_eq!(escape("a\u{1b}[2Jb\r\n\t\u{7}"), "a\\u{1b}[2Jb\\r\\n\\t\\u{7}");
        assert_eq!(escape_log("a\tb\u{1b}]0;owned\u{7}"), "a\tb\\u{1b}]0;owned\\u{7}");
        assert_eq!(escape("héllo ✓"), "héllo ✓", "printable text stays as it is");
    }
}
