//! Where each secret lives in Vault's API: `<mount>/<operation>/<prefix>/<tenant>/<namespace
//! parts>/<key>`. Tenants, namespaces and keys are checked by [`SecretId`] (no `/`, no `..`),
//! mount and prefix by the settings, so no path built here can leave the mount.

use kestrel_store::SecretId;

/// The KV v2 operations, each a path segment after the mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Values, by version.
    Data,
    /// Versions, custom metadata, listings.
    Metadata,
    /// Soft delete of given versions.
    Delete,
    /// Restoring soft-deleted versions.
    Undelete,
    /// Destroying given versions.
    Destroy,
}

impl Op {
    fn segment(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Metadata => "metadata",
            Self::Delete => "delete",
            Self::Undelete => "undelete",
            Self::Destroy => "destroy",
        }
    }
}

/// Builds API paths (relative to `/v1/`) under one mount and prefix.
#[derive(Clone, Debug)]
pub(crate) struct Paths {
    mount: String,
    prefix: String,
}

impl Paths {
    /// Paths under `mount` and `prefix` (empty: none), both already checked.
    pub(crate) fn new(mount: &str, prefix: &str) -> Self {
        Self {
            mount: mount.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// The path of `id` for `op`.
    pub(crate) fn secret(&self, op: Op, id: &SecretId) -> String {
        let mut path = self.namespace(op, id.tenant(), id.namespace());
        path.push('/');
        path.push_str(id.key());
        path
    }

    /// The folder of a namespace (empty: the tenant's root), without a trailing `/`.
    pub(crate) fn namespace(&self, op: Op, tenant: &str, namespace: &str) -> String {
        let mut path = format!("{}/{}", self.mount, op.segment());
        for part in [self.prefix.as_str(), tenant]
            .into_iter()
            .chain(namespace.split('.'))
            .filter(|part| !part.is_empty())
        {
            path.push('/');
            path.push_str(part);
        }
        path
    }

    /// The mount, for messages and the mount check.
    pub(crate) fn mount(&self) -> &str {
        &self.mount
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(tenant: &str, namespace: &str, key: &str) -> SecretId {
        SecretId::new(tenant, namespace, key).unwrap()
    }

    #[test]
    fn namespace_dots_become_path_segments_under_mount_prefix_and_tenant() {
        let paths = Paths::new("secret", "kestrel");
        let api_key = id("main", "company.team", "API_KEY");
        assert_eq!(
            paths.secret(Op::Data, &api_key),
            "secret/data/kestrel/main/company/team/API_KEY"
        );
        assert_eq!(
            paths.secret(Op::Metadata, &api_key),
            "secret/metadata/kestrel/main/company/team/API_KEY"
        );
        assert_eq!(
            paths.secret(Op::Destroy, &id("acme", "a", "k.v")),
            "secret/destroy/kestrel/acme/a/k.v"
        );
    }

    #[test]
    fn an_empty_prefix_and_a_nested_mount_are_kept_as_given() {
        let paths = Paths::new("kv/team", "");
        assert_eq!(
            paths.secret(Op::Undelete, &id("main", "ns", "K")),
            "kv/team/undelete/main/ns/K"
        );
        assert_eq!(
            paths.namespace(Op::Metadata, "main", ""),
            "kv/team/metadata/main"
        );
    }

    #[test]
    fn namespace_folders_have_no_trailing_slash() {
        let paths = Paths::new("secret", "kestrel");
        assert_eq!(
            paths.namespace(Op::Metadata, "main", "a.b.c"),
            "secret/metadata/kestrel/main/a/b/c"
        );
        assert_eq!(
            paths.namespace(Op::Delete, "main", "a"),
            "secret/delete/kestrel/main/a"
        );
    }
}
