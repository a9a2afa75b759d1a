//! Namespaces: a dot-separated hierarchy that exists as soon as a flow or a secret names it.
//! (Who may read a namespace's secrets is the resolver's policy, in `kestrel-secrets`.)

pub(crate) use kestrel_secrets::{is_within, with_ancestors};
use std::collections::BTreeSet;

/// Every namespace named, with its ancestors (a flow in `a.b` makes `a` exist too), sorted.
pub(crate) fn known<'a>(named: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    named
        .into_iter()
        .flat_map(with_ancestors)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_makes_its_ancestors_known() {
        let names = known(["company.team.project", "other"]);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            ["company", "company.team", "company.team.project", "other"]
        );
    }
}
