//! Who may do what. Every API route names one [`Permission`]; a token carries one [`Role`]; the matrix
//! between them is [`Role::allows`] and nothing else. `docs/access.md` is checked against this matrix by
//! the registry's tests, so the written policy and the enforced one cannot drift apart.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the installation: everything, including tokens.
    Admin,
    /// Curates clinical data: patients, examinations, findings, identities, media.
    DataManager,
    /// Labels videos: reads pseudonymised data and media, writes label segments.
    Annotator,
    /// Analyses: reads pseudonymised data, media and labels; writes nothing.
    Researcher,
    /// A worker process (media, inference): reads and updates media, writes label segments.
    Service,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::DataManager, Role::Annotator, Role::Researcher, Role::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::DataManager => "data_manager",
            Role::Annotator => "annotator",
            Role::Researcher => "researcher",
            Role::Service => "service",
        }
    }

    /// The access matrix. Adding a permission forces a decision here for every role (the match is
    /// exhaustive), which is the point.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match permission {
            ReadTerminology => true,
            ReadClinical => matches!(self, Admin | DataManager | Annotator | Researcher),
            WriteClinical => matches!(self, Admin | DataManager),
            ReadIdentity | WriteIdentity => matches!(self, Admin | DataManager),
            ReadMedia => true,
            WriteMedia => matches!(self, Admin | DataManager | Service),
            ReadLabels => true,
            WriteLabels => matches!(self, Admin | DataManager | Annotator | Service),
            ManageTokens => matches!(self, Admin),
            ProcessJobs => matches!(self, Admin | Service),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; roles are admin, data_manager, annotator, researcher, service")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// What a route does, in terms a policy can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read the knowledge base (examinations, findings, classifications, ...).
    ReadTerminology,
    /// Read pseudonymised clinical data: patients, examinations, findings.
    ReadClinical,
    /// Create, change and delete pseudonymised clinical data.
    WriteClinical,
    /// Read patient-identifying data: names, birth dates, free text.
    ReadIdentity,
    /// Write patient-identifying data.
    WriteIdentity,
    /// Read videos, frames and reports (anonymised products and metadata).
    ReadMedia,
    /// Register and update videos and reports, move their processing state.
    WriteMedia,
    /// Read label video segments.
    ReadLabels,
    /// Create, change and delete label video segments.
    WriteLabels,
    /// Create, list and revoke API tokens.
    ManageTokens,
    /// Claim and complete processing jobs, and read the identifying data of the medium a job processes
    /// (a worker must know the names it is to remove).
    ProcessJobs,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::ReadTerminology,
        Permission::ReadClinical,
        Permission::WriteClinical,
        Permission::ReadIdentity,
        Permission::WriteIdentity,
        Permission::ReadMedia,
        Permission::WriteMedia,
        Permission::ReadLabels,
        Permission::WriteLabels,
        Permission::ManageTokens,
        Permission::ProcessJobs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadTerminology => "read_terminology",
            Permission::ReadClinical => "read_clinical",
            Permission::WriteClinical => "write_clinical",
            Permission::ReadIdentity => "read_identity",
            Permission::WriteIdentity => "write_identity",
            Permission::ReadMedia => "read_media",
            Permission::WriteMedia => "write_media",
            Permission::ReadLabels => "read_labels",
            Permission::WriteLabels => "write_labels",
            Permission::ManageTokens => "manage_tokens",
            Permission::ProcessJobs => "process_jobs",
        }
    }
}

impl FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| format!("unknown permission `{s}`"))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().unwrap_err().to_string().contains("admin, data_manager"));
    }

    #[test]
    fn only_admin_and_data_manager_see_identities() {
        for r in Role::ALL {
            assert_eq!(r.allows(Permission::ReadIdentity), matches!(r, Role::Admin | Role::DataManager), "{r}");
        }
    }

    #[test]
    fn admin_may_do_everything_and_researcher_writes_nothing() {
        for p in Permission::ALL {
            assert!(Role::Admin.allows(p));
            if p.as_str().starts_with("write") || p == Permission::ManageTokens {
                assert!(!Role::Researcher.allows(p), "{p}");
            }
        }
    }
}
