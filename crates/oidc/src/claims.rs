//! From a validated token's claims to a [`Principal`]: who (subject, names), which of our roles, which
//! centers.
//!
//! Conventions shared with EndoregDB (`endoreg_db/services/center_access.py` in wg-lux/endoreg-db, so
//! one Keycloak realm can serve both):
//! - Centers come from the `groups` claim (Keycloak's group membership mapper with full paths): a group
//!   path `/centers/<center_key>` makes the user a member of center `<center_key>`. Surrounding
//!   whitespace is ignored, the key is what follows the prefix without leading or trailing `/`, and an
//!   empty or nested key (`/centers/`, `/centers/a/b`) is an error, as is a `groups` claim that is not
//!   a list of strings. Groups outside the prefix are ignored.
//! - Roles are names in `realm_access.roles` and `resource_access.<client>.roles`. EndoregDB
//!   (`KeycloakClaimsPayload.role_names` in `lx_dtypes/models/contracts/authz.py`, wg-lux/lx-data-models,
//!   used by `endoreg_db/authz/auth.py` and `backends.py`) also reads a flat `roles` claim and the roles
//!   of *every* client in `resource_access`; we read only the configured paths (by default the realm's
//!   roles and our own client's), so another application's client role cannot grant anything here.
//!   EndoregDB's realm roles (`patient:read`, `data:write`, `admin`, ... in `endoreg_db/authz/policy.py`)
//!   can be mapped through the configuration; its catch-all `endoregdb_user`, which passes every check
//!   there, grants nothing here unless a mapping names it.
//!
//! Provider role names become our roles through the configured mapping; names it does not list are
//! ignored. When they map to several roles, the principal gets the one whose permissions include all
//! the others' (admin over data_manager over annotator over researcher), which is exactly what the
//! provider granted together; when no such role exists (`service` with `annotator`: neither includes the
//! other), the sign-in is refused as ambiguous rather than guessing a union or dropping a grant. No
//! mapped role at all is refused too: a valid identity alone grants nothing.

use std::collections::{BTreeMap, BTreeSet};

use endoreg_common::access::{Permission, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::OidcConfig;
use crate::validate::Claims;

/// Who a validated token or sign-in speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The provider's stable subject identifier (`sub`).
    pub subject: String,
    /// `preferred_username`, when present (Keycloak's login name).
    pub username: Option<String>,
    /// `name`, when present.
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Role,
    /// Center keys from the center groups; empty when the token names none.
    pub centers: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the `{path}` claim is not a list of strings")]
    Malformed { path: String },
    #[error("the group path `{0}` does not name one center (expected <prefix><center_key>)")]
    BadCenterGroup(String),
    #[error("none of the token's roles is mapped to an endoreg role")]
    NoRole,
    #[error("the token's roles map to {0:?}, of which none includes the others' permissions; give the account one of them")]
    Ambiguous(Vec<Role>),
}

impl ClaimsError {
    pub fn reason(&self) -> &'static str {
        match self {
            ClaimsError::Malformed { .. } => "claims_malformed",
            ClaimsError::BadCenterGroup(_) => "claims_bad_center_group",
            ClaimsError::NoRole => "claims_no_role",
            ClaimsError::Ambiguous(_) => "claims_ambiguous_role",
        }
    }
}

/// The mapping from claims to a principal, read from [`OidcConfig`].
#[derive(Debug, Clone)]
pub struct ClaimsMapper {
    role_paths: Vec<Vec<String>>,
    groups_path: Vec<String>,
    center_prefix: String,
    role_mapping: BTreeMap<String, Role>,
}

impl ClaimsMapper {
    pub fn new(config: &OidcConfig) -> Self {
        Self {
            role_paths: config.role_claim_paths(),
            groups_path: config.groups_claim.split('.').map(str::to_owned).collect(),
            center_prefix: config.center_group_prefix.clone(),
            role_mapping: config.role_mapping.clone(),
        }
    }

    pub fn principal(&self, claims: &Claims) -> Result<Principal, ClaimsError> {
        let mut names = BTreeSet::new();
        for path in &self.role_paths {
            names.extend(string_list(claims, path)?);
        }
        let roles: BTreeSet<Role> = names.iter().filter_map(|n| self.role_mapping.get(*n).copied()).collect();
        let role = choose_role(&roles)?;
        let groups = string_list(claims, &self.groups_path)?;
        let centers = center_keys(&groups, &self.center_prefix)?;
        let text = |name: &str| claims.str(name).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(Principal {
            subject: claims.subject().to_owned(),
            username: text("preferred_username"),
            name: text("name"),
            email: text("email"),
            role,
            centers,
        })
    }
}

/// The strings at `path`; nothing when the claim is absent; an error when it is anything but a list of
/// strings.
fn string_list<'c>(claims: &'c Claims, path: &[String]) -> Result<Vec<&'c str>, ClaimsError> {
    match claims.at(path) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().ok_or_else(|| ClaimsError::Malformed { path: path.join(".") })).collect()
        }
        Some(_) => Err(ClaimsError::Malformed { path: path.join(".") }),
    }
}

/// The role whose permissions include every other granted role's, if there is one.
pub fn choose_role(roles: &BTreeSet<Role>) -> Result<Role, ClaimsError> {
    if roles.is_empty() {
        return Err(ClaimsError::NoRole);
    }
    let includes = |a: Role, b: Role| Permission::ALL.iter().all(|&p| !b.allows(p) || a.allows(p));
    roles
        .iter()
        .copied()
        .find(|&top| roles.iter().all(|&other| includes(top, other)))
        .ok_or_else(|| ClaimsError::Ambiguous(roles.iter().copied().collect()))
}

/// Center keys from group paths, as EndoregDB's `center_keys_from_group_paths` reads them.
pub fn center_keys(groups: &[&str], prefix: &str) -> Result<BTreeSet<String>, ClaimsError> {
    let mut keys = BTreeSet::new();
    for raw in groups {
        let path = raw.trim();
        let Some(rest) = path.strip_prefix(prefix) else { continue };
        let key = rest.trim_matches('/');
        if key.is_empty() || key.contains('/') {
            return Err(ClaimsError::BadCenterGroup(path.to_owned()));
        }
        keys.insert(key.to_owned());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn set(roles: &[Role]) -> BTreeSet<Role> {
        roles.iter().copied().collect()
    }

    #[test]
    fn the_role_that_includes_the_others_wins() {
        assert_eq!(choose_role(&set(&[Researcher, DataManager, Annotator])), Ok(DataManager));
        assert_eq!(choose_role(&set(&[Service, Admin])), Ok(Admin));
        assert_eq!(choose_role(&set(&[Researcher])), Ok(Researcher));
    }

    #[test]
    fn roles_that_do_not_include_each_other_are_refused() {
        assert_eq!(choose_role(&set(&[Service, Annotator])), Err(ClaimsError::Ambiguous(vec![Annotator, Service])));
        assert_eq!(choose_role(&set(&[Service, DataManager])).unwrap_err().reason(), "claims_ambiguous_role");
        assert_eq!(choose_role(&set(&[])), Err(ClaimsError::NoRole));
    }

    fn principal(claims: serde_json::Value) -> Result<Principal, ClaimsError> {
        let config = OidcConfig { client_id: "endoreg.web".into(), ..OidcConfig::default() };
        let serde_json::Value::Object(map) = claims else { panic!("an object") };
        ClaimsMapper::new(&config).principal(&Claims::unverified(map))
    }

    #[test]
    fn roles_come_from_the_realm_and_our_client_only() {
        let p = principal(serde_json::json!({
            "sub": "u1", "preferred_username": "ann", "email": " ",
            "realm_access": {"roles": ["offline_access", "researcher"]},
            "resource_access": {"endoreg.web": {"roles": ["annotator"]}, "other-app": {"roles": ["admin"]}},
            "roles": ["admin"],
            "groups": ["/centers/a"],
        }))
        .unwrap();
        assert_eq!(p.role, Annotator, "the other client's admin role and the flat `roles` grant nothing");
        assert_eq!((p.username.as_deref(), p.email.as_deref()), (Some("ann"), None));
        assert_eq!(p.centers.into_iter().collect::<Vec<_>>(), ["a"]);
        let err = principal(serde_json::json!({"sub": "u", "realm_access": {"roles": ["endoregdb_user"]}})).unwrap_err();
        assert_eq!(err, ClaimsError::NoRole, "EndoregDB's catch-all role is not mapped");
    }

    #[test]
    fn malformed_role_and_group_claims_are_refused() {
        let err = principal(serde_json::json!({"sub": "u", "realm_access": {"roles": "admin"}})).unwrap_err();
        assert_eq!(err, ClaimsError::Malformed { path: "realm_access.roles".into() });
        let err =
            principal(serde_json::json!({"sub": "u", "realm_access": {"roles": ["admin"]}, "groups": ["/centers/a", 7]})).unwrap_err();
        assert_eq!(err.reason(), "claims_malformed");
        let err = principal(serde_json::json!({"sub": "u", "realm_access": {"roles": ["admin"]}, "groups": "/centers/a"})).unwrap_err();
        assert_eq!(err.reason(), "claims_malformed");
    }

    #[test]
    fn center_groups_as_endoregdb_reads_them() {
        let keys =
            center_keys(&["/centers/uni_wuerzburg", " /centers/klinik_b/ ", "/staff", "/centersx/y", "centers/z"], "/centers/").unwrap();
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["klinik_b", "uni_wuerzburg"]);
        assert_eq!(center_keys(&["/centers/"], "/centers/"), Err(ClaimsError::BadCenterGroup("/centers/".into())));
        assert_eq!(center_keys(&["/centers//"], "/centers/").unwrap_err().reason(), "claims_bad_center_group");
        assert_eq!(center_keys(&["/centers/a/b"], "/centers/").unwrap_err().reason(), "claims_bad_center_group");
    }
}
