//! Kestra's JDBC URL of PostgreSQL, read into where to connect: `jdbc:postgresql://host:port/
//! database?user=u&password=p&sslmode=disable`, several `host:port` separated by commas,
//! `[ipv6]` hosts, and the short `jdbc:postgresql:database` (this host, port 5432). Messages
//! never quote the URL: it may hold a password.

use percent_encoding::percent_decode_str;
use zeroize::Zeroizing;

/// Where to connect, as the URL says.
#[derive(Default)]
pub(crate) struct Target {
    /// Hosts and their ports, in order; tried in turn.
    pub(crate) hosts: Vec<(String, u16)>,
    pub(crate) database: Option<String>,
    pub(crate) user: Option<String>,
    /// A password in the URL (`password=` or `user:password@`), kept zeroized.
    pub(crate) password: Option<Zeroizing<String>>,
    /// `sslmode`, as written.
    pub(crate) ssl_mode: Option<String>,
}

/// The port PostgreSQL listens on unless told otherwise.
const DEFAULT_PORT: u16 = 5432;

const EXPECTED: &str = "url: must be a PostgreSQL JDBC URL, jdbc:postgresql://host:port/database";

/// Reads `url`.
pub(crate) fn parse(url: &str) -> Result<Target, String> {
    let rest = url.strip_prefix("jdbc:").unwrap_or(url);
    let rest = rest
        .strip_prefix("postgresql:")
        .ok_or_else(|| EXPECTED.to_owned())?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut target = Target::default();
    match rest.strip_prefix("//") {
        Some(location) => {
            let (authority, database) = location.split_once('/').unwrap_or((location, ""));
            read_authority(&mut target, authority)?;
            target.database = non_empty(decode(database)?);
        }
        None => {
            target.hosts.push(("localhost".to_owned(), DEFAULT_PORT));
            target.database = non_empty(decode(rest)?);
        }
    }
    read_query(&mut target, query)?;
    Ok(target)
}

/// `[user[:password]@]host[:port][,host[:port]...]`.
fn read_authority(target: &mut Target, authority: &str) -> Result<(), String> {
    let hosts = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            target.user = non_empty(decode(user)?);
            target.password = non_empty(decode(password)?).map(Zeroizing::new);
            hosts
        }
        None => authority,
    };
    for host in hosts.split(',') {
        target.hosts.push(host_port(host)?);
    }
    Ok(())
}

/// `host`, `host:port`, `[::1]` or `[::1]:port`.
fn host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = match text.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or(EXPECTED)?;
            (host, after.strip_prefix(':'))
        }
        None => match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    if host.is_empty() {
        return Err("url: a host is missing".to_owned());
    }
    let port = match port {
        Some(port) => port
            .parse()
            .map_err(|_| "url: a port must be a number from 1 to 65535".to_owned())?,
        None => DEFAULT_PORT,
    };
    Ok((host.to_owned(), port))
}

/// The JDBC driver's properties kestrel reads; the others (`ApplicationName`: kestrel sets
/// its own; timeouts, fetch sizes) do not change what the query does and are ignored.
fn read_query(target: &mut Target, query: &str) -> Result<(), String> {
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = Zeroizing::new(decode(value)?);
        match key {
            "user" => target.user = non_empty(value.to_string()),
            "password" => target.password = Some(value),
            "sslmode" => target.ssl_mode = Some(value.to_string()),
            _ => {}
        }
    }
    Ok(())
}

fn decode(text: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| "url: a part is not UTF-8 once percent-decoded".to_owned())
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kestras_forms_are_read() {
        let target = parse("jdbc:postgresql://db.example:5433/app?user=ada&password=p%40ss&sslmode=disable&ApplicationName=x").unwrap();
        assert_eq!(target.hosts, [("db.example".to_owned(), 5433)]);
        assert_eq!(target.database.as_deref(), Some("app"));
        assert_eq!(target.user.as_deref(), Some("ada"));
        assert_eq!(target.password.as_deref().map(String::as_str), Some("p@ss"));
        assert_eq!(target.ssl_mode.as_deref(), Some("disable"));
        let target = parse("jdbc:postgresql://a,[::1]:6000/").unwrap();
        assert_eq!(
            target.hosts,
            [("a".to_owned(), 5432), ("::1".to_owned(), 6000)]
        );
        assert_eq!(target.database, None);
        let target = parse("jdbc:postgresql:app").unwrap();
        assert_eq!(target.hosts, [("localhost".to_owned(), 5432)]);
        assert_eq!(target.database.as_deref(), Some("app"));
        let target = parse("jdbc:postgresql://bob:s3cret@h/d").unwrap();
        assert_eq!(target.user.as_deref(), Some("bob"));
        assert_eq!(
            target.password.as_deref().map(String::as_str),
            Some("s3cret")
        );
    }

    #[test]
    fn errors_never_quote_the_url() {
        for url in [
            "jdbc:mysql://u:s3cret@h/d",
            "jdbc:postgresql://u:s3cret@h:port/d",
            "jdbc:postgresql://u:s3cret@/d",
        ] {
            let error = parse(url).err().unwrap();
            assert!(!error.contains("s3cret"), "{error}");
        }
    }
}
