//! Sanitizers: turn what a client sends into attribute values that carry no secrets and stay bounded.
//!
//! - [`sql`]: statement text and `db.query.summary`, dialect-aware.
//! - [`redis`]: Redis commands in CLI syntax with values masked.
//! - [`url`]: `url.full` with credentials and signed query values redacted.

pub mod redis;
pub mod sql;
pub mod url;

/// The default cap, in bytes, on sanitized text (`db.query.text`): 32 KiB.
pub const DEFAULT_MAX_TEXT_LEN: usize = 32 * 1024;

/// Cuts `text` to at most `max` bytes, on a char boundary. Never panics.
///
/// ```
/// let mut s = String::from("héllo");
/// tracewire_shared::sanitize::truncate_on_char_boundary(&mut s, 2);
/// assert_eq!(s, "h");
/// ```
pub fn truncate_on_char_boundary(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}
