//! Namespaces: a dot-separated hierarchy that exists as soon as a flow or a secret names it,
//! and the rule of `namespaces.<ns>.allowed-namespaces` for `secret(namespace=...)`.

use std::collections::{BTreeMap, BTreeSet};

/// Whether `namespace` is `parent` or one of its children (`a.b` is within `a`, `ab` is not).
pub(crate) fn is_within(namespace: &str, parent: &str) -> bool {
    namespace
        .strip_prefix(parent)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// `a.b.c`, then `a.b`, then `a`.
pub(crate) fn with_ancestors(namespace: &str) -> impl Iterator<Item = &str> {
    let mut next = (!namespace.is_empty()).then_some(namespace);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.rsplit_once('.').map(|(parent, _)| parent);
        Some(current)
    })
}

/// Every namespace named, with its ancestors (a flow in `a.b` makes `a` exist too), sorted.
pub(crate) fn known<'a>(named: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    named
        .into_iter()
        .flat_map(with_ancestors)
        .map(str::to_owned)
        .collect()
}

/// Which flows may read a namespace's secrets through `secret(namespace=...)`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadPolicy {
    /// `namespaces.<ns>.allowed-namespaces`, by namespace.
    allowed: BTreeMap<String, Vec<String>>,
}

impl ReadPolicy {
    pub(crate) fn new(allowed: BTreeMap<String, Vec<String>>) -> Self {
        Self { allowed }
    }

    /// Whether a flow of `reader` may read the secrets of `owner`. Its own namespace and its
    /// ancestors (what it inherits) always; another one when the closest configured
    /// `allowed-namespaces` of `owner` (its own, else an ancestor's) lists `reader` or one of
    /// its ancestors, or `*`; with none configured, yes, as in Kestra's default.
    pub(crate) fn may_read(&self, reader: &str, owner: &str) -> bool {
        if is_within(reader, owner) {
            return true;
        }
        let closest = with_ancestors(owner).find_map(|ns| self.allowed.get(ns));
        closest.is_none_or(|list| {
            list.iter()
                .any(|allowed| allowed == "*" || is_within(reader, allowed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_within_and_prefixes_are_not() {
        assert!(is_within("a.b", "a"));
        assert!(is_within("a", "a"));
        assert!(!is_within("ab", "a"));
        assert!(!is_within("a", "a.b"));
    }

    #[test]
    fn a_flow_makes_its_ancestors_known() {
        let names = known(["company.team.project", "other"]);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            ["company", "company.team", "company.team.project", "other"]
        );
    }

    #[test]
    fn allowed_namespaces_limit_cross_namespace_reads() {
        let policy = ReadPolicy::new(BTreeMap::from([(
            "company.finance".to_owned(),
            vec!["company.finance".to_owned(), "company.audit".to_owned()],
        )]));
        assert!(policy.may_read("company.finance.reports", "company.finance"));
        assert!(policy.may_read("company.audit.q1", "company.finance"));
        assert!(!policy.may_read("company.team", "company.finance"));
        assert!(
            !policy.may_read("company.team", "company.finance.payroll"),
            "inherited"
        );
        assert!(policy.may_read("company.team", "company"), "an ancestor");
        assert!(
            policy.may_read("company.team", "company.hr"),
            "none configured"
        );
    }
}
