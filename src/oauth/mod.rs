//! OAuth 2.0 pieces shared by runs and `svc authorize`: [`jwt`] signs the
//! JWT assertions of `private_key_jwt` client authentication and of the
//! JWT-bearer grant (RFC 7523).

pub mod jwt;
