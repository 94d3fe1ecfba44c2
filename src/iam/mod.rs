//! AWS Identity and Access Management: policy documents and their
//! evaluation ([`policy`]), pure code with no IO. Users, roles and managed
//! policies arrive with the IAM API.

pub mod policy;
