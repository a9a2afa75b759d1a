//! Secret names at AWS: `<prefix>/<tenant>/<namespace>/<key>`, the namespace kept dotted,
//! and the tags kestrel puts on each.

use crate::api::AwsTag;
use kestrel_store::{SecretId, Tag};

/// The tags kestrel sets on every secret it creates, so AWS's own tools can filter on them.
pub(crate) const KESTREL_TAGS: [&str; 3] = ["tenant", "namespace", "key"];

/// How names are built under one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    /// The secret's name.
    pub(crate) fn of(&self, id: &SecretId) -> String {
        format!(
            "{}/{}/{}/{}",
            self.prefix,
            id.tenant(),
            id.namespace(),
            id.key()
        )
    }

    /// The start of every name in one tenant.
    pub(crate) fn tenant_prefix(&self, tenant: &str) -> String {
        format!("{}/{tenant}/", self.prefix)
    }

    /// The start of every name in exactly one namespace (keys hold no `/`).
    pub(crate) fn namespace_prefix(&self, tenant: &str, namespace: &str) -> String {
        format!("{}/{tenant}/{namespace}/", self.prefix)
    }

    /// The address a name in `tenant` stands for; `None` for names kestrel did not build
    /// (AWS's name filter is a case-insensitive prefix match, so it may list others).
    pub(crate) fn parse(&self, tenant: &str, name: &str) -> Option<SecretId> {
        let rest = name.strip_prefix(&self.tenant_prefix(tenant))?;
        let (namespace, key) = rest.split_once('/')?;
        SecretId::new(tenant, namespace, key).ok()
    }
}

/// kestrel's tags of `id`, then the user's.
pub(crate) fn tags_of(id: &SecretId, user: &[Tag]) -> Vec<AwsTag> {
    let own = [id.tenant(), id.namespace(), id.key()];
    KESTREL_TAGS
        .iter()
        .zip(own)
        .map(|(key, value)| AwsTag {
            key: (*key).to_owned(),
            value: value.to_owned(),
        })
        .chain(user.iter().map(|t| AwsTag {
            key: t.key.clone(),
            value: t.value.clone(),
        }))
        .collect()
}

/// The user's tags among AWS's: kestrel's own left out.
pub(crate) fn user_tags(tags: &[AwsTag]) -> Vec<Tag> {
    tags.iter()
        .filter(|t| !KESTREL_TAGS.contains(&t.key.as_str()))
        .map(|t| Tag {
            key: t.key.clone(),
            value: t.value.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_holds_prefix_tenant_dotted_namespace_and_key_and_parses_back() {
        let names = Names::new("kestrel/");
        let id = SecretId::main("company.team", "API_KEY").unwrap();
        let name = names.of(&id);
        assert_eq!(name, "kestrel/main/company.team/API_KEY");
        assert_eq!(names.parse("main", &name), Some(id));
        assert_eq!(names.parse("other", &name), None);
        assert_eq!(
            names.parse("main", "KESTREL/main/company.team/API_KEY"),
            None
        );
        assert_eq!(names.parse("main", "kestrel/main/a/b/c"), None);
    }

    #[test]
    fn kestrel_tags_come_first_and_are_hidden_from_the_user() {
        let id = SecretId::main("company.team", "API_KEY").unwrap();
        let user = vec![Tag {
            key: "team".into(),
            value: "data".into(),
        }];
        let tags = tags_of(&id, &user);
        let keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["tenant", "namespace", "key", "team"]);
        assert_eq!(tags[1].value, "company.team");
        assert_eq!(user_tags(&tags), user);
    }
}
