//! Credentials written into URLs (a database URL, `secret.vault.address`), hidden wherever
//! the command line shows such a URL: `kestrel config` and its error messages.

use kestrel_secrets::MASK;

/// What separates the parameters of a query (and of a fragment).
const SEPARATORS: [char; 4] = ['?', '&', ';', '#'];

/// Parts of a parameter name that make its value a credential (lower case): `password`,
/// `passwd`, `pwd`, `token`, `access_token`, `secret`, `client_secret`, `api_key`, `sslkey`,
/// `auth`, `X-Amz-Credential`, `X-Amz-Signature`, Azure's `sig`...
const CREDENTIAL_NAMES: [&str; 8] = [
    "pass",
    "pwd",
    "token",
    "secret",
    "key",
    "auth",
    "credential",
    "sig",
];

/// `text` with the credentials of the URL it holds replaced by the mask: the password of the
/// userinfo (`scheme://user:******@host`) and the value of every credential-like parameter
/// (`?password=******`). Text without `://` is returned as it is. When a URL is malformed (a
/// password holding an unencoded `@`, `/` or `?`, or an `@` in the query), more is hidden
/// rather than less.
pub(crate) fn hide_url_credentials(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let rest = hide_credential_parameters(rest);
    // The last `@`, so that an unencoded `@` in a password stays on the hidden side.
    let Some((userinfo, host_and_more)) = rest.rsplit_once('@') else {
        return format!("{scheme}://{rest}");
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:{MASK}@{host_and_more}"),
        None => format!("{scheme}://{rest}"),
    }
}

/// `text` with the value of each `name=value` piece whose name looks like a credential's
/// replaced by the mask. Every piece between separators counts, not only those after the
/// first `?`, since a password may hold an unencoded `?`.
fn hide_credential_parameters(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let end = rest.find(SEPARATORS).unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(end);
        match piece.split_once('=') {
            Some((name, _value)) if is_credential_name(name) => {
                shown.push_str(name);
                shown.push('=');
                shown.push_str(MASK);
            }
            _ => shown.push_str(piece),
        }
        let mut tail = tail.chars();
        let Some(separator) = tail.next() else {
            return shown;
        };
        shown.push(separator);
        rest = tail.as_str();
    }
}

fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_NAMES.iter().any(|part| name.contains(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_userinfo_password_is_hidden() {
        assert_eq!(
            hide_url_credentials("postgres://kestrel:s3cret@db:5432/kestrel"),
            "postgres://kestrel:******@db:5432/kestrel"
        );
        assert_eq!(
            hide_url_credentials("https://admin:t0ken@vault.local:8200"),
            "https://admin:******@vault.local:8200"
        );
        assert_eq!(
            hide_url_credentials("https://:t0ken@vault.local"),
            "https://:******@vault.local"
        );
    }

    #[test]
    fn credential_parameters_are_hidden() {
        assert_eq!(
            hide_url_credentials("postgres://db/k?user=ada&password=s3cret&sslmode=require"),
            "postgres://db/k?user=ada&password=******&sslmode=require"
        );
        assert_eq!(
            hide_url_credentials("https://h/x?X-Amz-Signature=abc;api_key=def#access_token=ghi"),
            "https://h/x?X-Amz-Signature=******;api_key=******#access_token=******"
        );
        assert_eq!(
            hide_url_credentials("https://h/x?sig=abc&PWD=def&Token=g"),
            "https://h/x?sig=******&PWD=******&Token=******"
        );
    }

    #[test]
    fn a_malformed_url_hides_more_rather_than_less() {
        for (url, hidden) in [
            ("postgres://u:p@ss@db/k", "p@ss"),
            ("postgres://u:p/ss@db/k", "p/ss"),
            ("postgres://u:p?ss@db/k?password=x1y2", "p?ss"),
            ("postgres://u:p?ss@db/k?password=x1y2", "x1y2"),
            ("https://h/x?email=a@b.c&token=t0k3n", "t0k3n"),
        ] {
            let shown = hide_url_credentials(url);
            assert!(!shown.contains(hidden), "{url} shown as {shown}");
        }
    }

    #[test]
    fn text_without_credentials_stays() {
        for text in [
            "sqlite",
            "sqlite:///tmp/k.db",
            "postgres://user@db/x",
            "http://127.0.0.1:8200",
            "https://h/x?region=eu&mode=fast",
            "no url: a=b",
        ] {
            assert_eq!(hide_url_credentials(text), text);
        }
    }
}
