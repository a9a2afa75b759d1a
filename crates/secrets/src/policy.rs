//! Who reads a secret, and whether they may: the one policy point of every read (ARCHITECTURE.md, step 5).
//!
//! Every read names its [`Reader`]. A flow (an execution, or a trigger being evaluated) reads
//! its own namespace and its ancestors; any other namespace only when that namespace's
//! effective `allowed-namespaces` admits the flow's. The [`crate::Resolver`] asks
//! [`ReadPolicy::check`] before any lookup, so a refusal reveals nothing about which keys exist.

use std::collections::BTreeMap;
use std::fmt;

/// Who reads a secret. There is no anonymous read: the resolver takes one of these with every
/// lookup, and the audit trail records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reader {
    /// An execution of a flow, and who started it (`user:ada`, `token:ci`, `schedule`,
    /// `webhook`, `cli:ada`).
    Execution {
        /// The execution's id.
        id: String,
        /// The flow's namespace.
        namespace: String,
        /// The flow's id.
        flow_id: String,
        /// Who triggered the execution.
        triggered_by: String,
    },
    /// A flow's trigger being evaluated before any execution exists (a webhook's key).
    Trigger {
        /// The flow's namespace.
        namespace: String,
        /// The flow's id.
        flow_id: String,
    },
    /// An operator at the command line (`kestrel render`), by OS user name.
    Operator(String),
}

impl Reader {
    /// The namespace of the flow reading, if a flow reads.
    pub fn flow_namespace(&self) -> Option<&str> {
        match self {
            Reader::Execution { namespace, .. } | Reader::Trigger { namespace, .. } => {
                Some(namespace)
            }
            Reader::Operator(_) => None,
        }
    }
}

impl fmt::Display for Reader {
    /// `execution:<id>`, `trigger:<namespace>.<flow>` or `cli:<user>`: how the audit trail and
    /// messages name the reader.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reader::Execution { id, .. } => write!(f, "execution:{id}"),
            Reader::Trigger { namespace, flow_id } => write!(f, "trigger:{namespace}.{flow_id}"),
            Reader::Operator(user) => write!(f, "cli:{user}"),
        }
    }
}

/// A read the policy refused; the message is fixed (Kestra clients match it) and names no key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The namespace whose secrets were asked for.
    pub owner: String,
    /// The namespace of the flow that asked.
    pub reader: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Refusal { owner, reader } = self;
        write!(
            f,
            "namespace '{owner}' does not allow flows of namespace '{reader}' to read its secrets \
             (namespaces.{owner}.allowed-namespaces)"
        )
    }
}

impl std::error::Error for Refusal {}

/// `namespaces.<ns>.allowed-namespaces` of the configuration: which flows' namespaces may read
/// a namespace's secrets with `secret(namespace=...)`. With nothing configured, no flow reads
/// outside its own namespace and ancestors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadPolicy {
    allowed: BTreeMap<String, Vec<String>>,
}

impl ReadPolicy {
    /// A policy over `allowed`: each namespace's list of admitted namespaces (`"*"` admits all).
    pub fn new(allowed: BTreeMap<String, Vec<String>>) -> Self {
        Self { allowed }
    }

    /// Whether `reader` may read the secrets of `owner`. An operator may read any namespace
    /// (whoever runs the command line holds the key file anyway); a flow its own namespace,
    /// its ancestors, and a namespace whose effective `allowed-namespaces` (its own, else its
    /// closest ancestor's) lists the flow's namespace, one of its ancestors, or `*`.
    pub fn check(&self, reader: &Reader, owner: &str) -> Result<(), Refusal> {
        let Some(flow_namespace) = reader.flow_namespace() else {
            return Ok(());
        };
        if is_within(flow_namespace, owner) || self.admits(owner, flow_namespace) {
            return Ok(());
        }
        Err(Refusal {
            owner: owner.to_owned(),
            reader: flow_namespace.to_owned(),
        })
    }

    fn admits(&self, owner: &str, flow_namespace: &str) -> bool {
        let effective = with_ancestors(owner).find_map(|ns| self.allowed.get(ns));
        effective.is_some_and(|list| {
            list.iter()
                .any(|allowed| allowed == "*" || is_within(flow_namespace, allowed))
        })
    }
}

/// Whether `namespace` is `parent` or one of its children (`a.b` is within `a`, `ab` is not).
pub fn is_within(namespace: &str, parent: &str) -> bool {
    namespace
        .strip_prefix(parent)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// `a.b.c`, then `a.b`, then `a` (nothing for `""`).
pub fn with_ancestors(namespace: &str) -> impl Iterator<Item = &str> {
    let mut next = (!namespace.is_empty()).then_some(namespace);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.rsplit_once('.').map(|(parent, _)| parent);
        Some(current)
    })
}

/// An execution of flow `f` in `namespace`, triggered by `user:ada`: the reader of this crate's
/// tests.
#[cfg(test)]
pub(crate) fn flow_in(namespace: &str) -> Reader {
    Reader::Execution {
        id: "e1".into(),
        namespace: namespace.into(),
        flow_id: "f".into(),
        triggered_by: "user:ada".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finance_policy() -> ReadPolicy {
        ReadPolicy::new(BTreeMap::from([(
            "company.finance".to_owned(),
            vec!["company.finance".to_owned(), "company.audit".to_owned()],
        )]))
    }

    #[test]
    fn a_flow_reads_its_namespace_and_ancestors() {
        let policy = ReadPolicy::default();
        for owner in ["company.team", "company"] {
            assert_eq!(policy.check(&flow_in("company.team"), owner), Ok(()));
        }
    }

    #[test]
    fn without_configuration_no_flow_reads_another_namespace() {
        let policy = ReadPolicy::default();
        let refusal = policy.check(&flow_in("team.a"), "team.b").unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "namespace 'team.b' does not allow flows of namespace 'team.a' to read its secrets \
             (namespaces.team.b.allowed-namespaces)"
        );
        assert!(policy.check(&flow_in("team"), "team.b").is_err(), "a child");
    }

    #[test]
    fn allowed_namespaces_admit_listed_namespaces_and_their_children() {
        let policy = finance_policy();
        let allowed = |reader: &str, owner: &str| policy.check(&flow_in(reader), owner).is_ok();
        assert!(allowed("company.audit.q1", "company.finance"));
        assert!(
            allowed("company.audit", "company.finance.payroll"),
            "inherited"
        );
        assert!(!allowed("company.team", "company.finance"));
        assert!(
            !allowed("company.auditors", "company.finance"),
            "a prefix only"
        );
        assert!(!allowed("company.team", "company.hr"), "none configured");
    }

    #[test]
    fn a_star_admits_everyone_and_operators_read_anywhere() {
        let policy = ReadPolicy::new(BTreeMap::from([("shared".into(), vec!["*".into()])]));
        assert!(policy.check(&flow_in("x.y"), "shared.sub").is_ok());
        let operator = Reader::Operator("ada".into());
        assert!(policy.check(&operator, "anything").is_ok());
        let trigger = Reader::Trigger {
            namespace: "x".into(),
            flow_id: "hook".into(),
        };
        assert!(policy.check(&trigger, "y").is_err());
    }

    #[test]
    fn readers_are_named_for_the_audit_trail() {
        assert_eq!(flow_in("a").to_string(), "execution:e1");
        assert_eq!(Reader::Operator("ada".into()).to_string(), "cli:ada");
        let trigger = Reader::Trigger {
            namespace: "a.b".into(),
            flow_id: "hook".into(),
        };
        assert_eq!(trigger.to_string(), "trigger:a.b.hook");
    }

    #[test]
    fn within_and_ancestors() {
        assert!(is_within("a.b", "a") && is_within("a", "a"));
        assert!(!is_within("ab", "a") && !is_within("a", "a.b"));
        assert_eq!(
            with_ancestors("a.b.c").collect::<Vec<_>>(),
            ["a.b.c", "a.b", "a"]
        );
        assert_eq!(with_ancestors("").count(), 0);
    }
}
