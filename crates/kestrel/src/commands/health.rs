//! `kestrel health [URL]`: whether a kestrel server answers its health route, for a container's
//! `HEALTHCHECK` or a service manager (no curl needed in the image).

use clap::Args;
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// How long the check waits for the server, in all.
const WITHIN: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub(crate) struct HealthArgs {
    /// The health route to ask (plain http).
    #[arg(default_value = "http://127.0.0.1:8080/health")]
    url: String,
}

/// 0 when `GET url` answers 200 within two seconds, 1 otherwise (why, on stderr), 2 for a URL
/// that is not `http://host[:port]/path`.
pub(crate) fn run(args: &HealthArgs) -> Result<u8, crate::error::CliError> {
    let (authority, path) = parse(&args.url).ok_or_else(|| {
        crate::error::CliError::usage(format!(
            "'{}' is not an http:// URL (the check speaks plain HTTP to the server's own port)",
            args.url
        ))
    })?;
    match status(authority, path) {
        Ok(200) => Ok(0),
        Ok(code) => Err(crate::error::CliError::failed(format!(
            "{} answered {code}",
            args.url
        ))),
        Err(error) => Err(crate::error::CliError::failed(format!(
            "{} did not answer within {} s",
            args.url,
            WITHIN.as_secs()
        ))
        .caused_by(error)),
    }
}

/// `host:port` (port 80 when absent) and the path of an `http://` URL.
fn parse(url: &str) -> Option<(String, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
    if authority.is_empty() {
        return None;
    }
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((authority, path))
}

/// The status code of `GET path` on `authority`.
fn status(authority: String, path: &str) -> std::io::Result<u16> {
    let address = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the host has no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, WITHIN)?;
    stream.set_read_timeout(Some(WITHIN))?;
    stream.set_write_timeout(Some(WITHIN))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0_u8; 64];
    let read = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..read]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_checked() {
        assert_eq!(
            parse("http://127.0.0.1:8080/health"),
            Some(("127.0.0.1:8080".into(), "/health"))
        );
        assert_eq!(parse("http://kestrel"), Some(("kestrel:80".into(), "/")));
        assert_eq!(parse("https://kestrel/health"), None);
        assert_eq!(parse("http:///health"), None);
    }
}
