//! Kestra's named parameters (`:name`) turned into PostgreSQL's numbered ones (`$1`), so the
//! values are bound by the driver and never written into the query text. `::` casts, quoted
//! texts and identifiers, dollar-quoted texts and comments are left alone.

/// `sql` with each `:name` replaced by `$n` (the same name, the same number), and the names
/// in the order of their numbers.
pub(crate) fn number(sql: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<String> = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let skipped = skip_quoted(&chars, at);
        if skipped > at {
            out.extend(&chars[at..skipped]);
            at = skipped;
            continue;
        }
        match (chars[at], chars.get(at + 1)) {
            (':', Some(':')) => {
                out.push_str("::");
                at += 2;
            }
            (':', Some(&next)) if next.is_ascii_alphabetic() || next == '_' => {
                let end = (at + 1..chars.len())
                    .find(|&i| !(chars[i].is_ascii_alphanumeric() || chars[i] == '_'))
                    .unwrap_or(chars.len());
                let name: String = chars[at + 1..end].iter().collect();
                let index = match names.iter().position(|known| *known == name) {
                    Some(index) => index,
                    None => {
                        names.push(name);
                        names.len() - 1
                    }
                };
                out.push_str(&format!("${}", index + 1));
                at = end;
            }
            (other, _) => {
                out.push(other);
                at += 1;
            }
        }
    }
    (out, names)
}

/// Where the quoted text, identifier or comment starting at `at` ends (just after it); `at`
/// when none starts there.
fn skip_quoted(chars: &[char], at: usize) -> usize {
    let rest = &chars[at..];
    let until = |closing: &[char], from: usize| {
        (at + from..chars.len())
            .find(|&i| chars[i..].starts_with(closing))
            .map_or(chars.len(), |i| i + closing.len())
    };
    match rest {
        ['\'', ..] => until(&['\''], 1),
        ['"', ..] => until(&['"'], 1),
        ['-', '-', ..] => until(&['\n'], 2),
        ['/', '*', ..] => until(&['*', '/'], 2),
        ['$', ..] => dollar_tag(rest).map_or(at, |tag| until(&tag, tag.len())),
        _ => at,
    }
}

/// The tag (`$$`, `$body$`) of a dollar-quoted text starting `rest`.
fn dollar_tag(rest: &[char]) -> Option<Vec<char>> {
    let end = rest
        .iter()
        .skip(1)
        .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))?
        + 1;
    (rest[end] == '$' && !rest[1..end].first().is_some_and(char::is_ascii_digit))
        .then(|| rest[..=end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_numbers_and_repeat() {
        let (sql, names) = number("select :a, :b_2, :a::int where x = :b_2");
        assert_eq!(sql, "select $1, $2, $1::int where x = $2");
        assert_eq!(names, ["a", "b_2"]);
    }

    #[test]
    fn quotes_casts_and_comments_are_left_alone() {
        let source = concat!(
            "select ':no', \"x:no\", $$ :no $$, $t$ :no $t$, now()::date -- :no\n",
            "/* :no */ , :yes, $1"
        );
        let (sql, names) = number(source);
        assert_eq!(names, ["yes"]);
        assert_eq!(sql, source.replace(":yes", "$1"));
    }
}
