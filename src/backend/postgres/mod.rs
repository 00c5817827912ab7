//! The PostgreSQL backend.

use super::{Backend, Options};
use crate::secrets::Error;

pub async fn open(_url: &str, _env: &str, _options: &Options) -> Result<Backend, Error> {
    Err(Error::Invalid(
        "the PostgreSQL backend is being built".into(),
    ))
}
