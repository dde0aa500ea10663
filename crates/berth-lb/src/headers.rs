//! The headers ALB adds, keeps and drops, pure: X-Forwarded-For/-Proto/
//! -Port, X-Amzn-Trace-Id, hop-by-hop headers, the AWSALB cookies, and the
//! pages of ALB's own errors.

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// ALB answers 463 when X-Forwarded-For already holds more than this.
pub const MAX_FORWARDED_FOR: usize = 30;

/// X-Forwarded-For with the client's address appended; `None` when the
/// header already lists more than [`MAX_FORWARDED_FOR`] addresses (463).
pub fn forwarded_for(existing: &[&str], client: IpAddr) -> Option<String> {
    let listed: Vec<&str> = existing.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).collect();
    if listed.len() > MAX_FORWARDED_FOR {
        return None;
    }
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
        v4 => v4,
    };
    let mut out = listed.join(", ");
    if !out.is_empty() {
        out.push_str(", ");
    }
    out.push_str(&client.to_string());
    Some(out)
}

/// An X-Ray trace id: `1-<epoch seconds, 8 hex>-<96 bits, 24 hex>`.
pub fn new_trace_id(now: SystemTime, random: [u8; 12]) -> String {
    let secs = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("1-{:08x}-{hex}", secs as u32)
}

/// X-Amzn-Trace-Id as ALB forwards it: none (or none with a valid Root)
/// gets `Root=<id>`; one with a Root keeps its fields and gains (or has
/// replaced) `Self=<id>` in front.
pub fn trace_header(existing: Option<&str>, id: &str) -> String {
    let Some(existing) = existing.filter(|e| e.split(';').any(|f| f.trim().strip_prefix("Root=").is_some_and(valid_trace_id))) else {
        return format!("Root={id}");
    };
    let rest: Vec<&str> = existing.split(';').map(str::trim).filter(|f| !f.is_empty() && !f.starts_with("Self=")).collect();
    format!("Self={id};{}", rest.join(";"))
}

fn valid_trace_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 3 && parts[0] == "1" && hex(parts[1], 8) && hex(parts[2], 24)
}

/// Removes the hop-by-hop headers (and those the Connection header
/// names). With `keep_upgrade` (a WebSocket or other upgrade going
/// through) `Connection: upgrade` and `Upgrade` stay.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(&name);
        }
    }
    for name in [header::TE, header::TRAILER, header::TRANSFER_ENCODING, header::PROXY_AUTHORIZATION] {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        headers.remove(name);
    }
    headers.remove(header::CONNECTION);
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Whether a request asks for a protocol upgrade (WebSocket and the like).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// The value of cookie `name` in the request's Cookie headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The AWSALB cookie's value for a target.
pub fn sticky_value(addr: SocketAddr) -> String {
    sticky_group_value(&addr.to_string())
}

/// The target an AWSALB cookie names.
pub fn sticky_target(value: &str) -> Option<SocketAddr> {
    sticky_group(value)?.parse().ok()
}

/// The AWSALBTG cookie's value for a target group.
pub fn sticky_group_value(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// The target group an AWSALBTG cookie names.
pub fn sticky_group(value: &str) -> Option<String> {
    String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).ok()?).ok()
}

/// `NAME=value; Expires=<http date>; Path=/` (and the CORS twin's
/// attributes with `cors`).
pub fn set_cookie(name: &str, value: &str, expires: SystemTime, cors: bool) -> String {
    let when = time::OffsetDateTime::from(expires)
        .format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap_or_default();
    let mut c = format!("{name}={value}; Expires={when}; Path=/");
    if cors {
        c.push_str("; SameSite=None; Secure");
    }
    c
}

/// The reason phrase ALB's pages use.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        460 => "Client Closed Request",
        463 => "Bad Request",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        _ => "Error",
    }
}

/// The HTML body of ALB's own error responses.
pub fn error_page(status: u16) -> String {
    let title = format!("{status} {}", reason_phrase(status));
    format!("<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_appends_and_refuses_over_thirty() {
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(forwarded_for(&[], ip).unwrap(), "10.0.0.9");
        assert_eq!(forwarded_for(&["1.1.1.1, 2.2.2.2"], ip).unwrap(), "1.1.1.1, 2.2.2.2, 10.0.0.9");
        assert_eq!(forwarded_for(&["1.1.1.1", "2.2.2.2"], ip).unwrap(), "1.1.1.1, 2.2.2.2, 10.0.0.9");
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert_eq!(forwarded_for(&[], mapped).unwrap(), "10.0.0.9");
        let thirty = vec!["1.2.3.4"; 30].join(",");
        assert!(forwarded_for(&[&thirty], ip).is_some());
        let thirty_one = vec!["1.2.3.4"; 31].join(",");
        assert!(forwarded_for(&[&thirty_one], ip).is_none());
    }

    #[test]
    fn trace_ids_new_and_kept() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(0x5759_e988);
        let id = new_trace_id(t, [0xab; 12]);
        assert_eq!(id, "1-5759e988-abababababababababababab");
        assert_eq!(trace_header(None, &id), format!("Root={id}"));
        assert_eq!(trace_header(Some("garbage"), &id), format!("Root={id}"));
        let root = "Root=1-67891233-abcdef012345678912345678";
        assert_eq!(trace_header(Some(root), &id), format!("Self={id};{root}"));
        let with_self = format!("Self=1-11111111-111111111111111111111111;{root};CalledFrom=app");
        assert_eq!(trace_header(Some(&with_self), &id), format!("Self={id};{root};CalledFrom=app"));
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-private"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        let mut up = h.clone();
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), vec!["x-kept"]);
        strip_hop_by_hop(&mut up, true);
        assert_eq!(up.get(header::UPGRADE).unwrap(), "websocket");
        assert_eq!(up.get(header::CONNECTION).unwrap(), "upgrade");
    }

    #[test]
    fn cookies_and_sticky_values() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; AWSALB=xyz; b=2"));
        assert_eq!(cookie(&h, "AWSALB"), Some("xyz"));
        assert_eq!(cookie(&h, "AWSALBTG"), None);
        let addr: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        assert_eq!(sticky_target(&sticky_value(addr)), Some(addr));
        assert_eq!(sticky_target("!!"), None);
        let c = set_cookie("AWSALB", "v", SystemTime::UNIX_EPOCH, false);
        assert_eq!(c, "AWSALB=v; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/");
        assert!(error_page(503).contains("<title>503 Service Temporarily Unavailable</title>"));
    }
}
