//! Reading an age file: decrypted as it is read, the plaintext held
//! whole only in memory that is zeroed when dropped.

use std::io::{BufReader, Read};
use std::path::Path;

use zeroize::Zeroizing;

use super::{Error, Identities};

/// Decrypts a store as it is read: only the plaintext is held whole, in
/// memory that is zeroed when dropped.
pub fn decrypt(
    path: &Path,
    input: impl std::io::BufRead,
    size: usize,
    identities: &Identities,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let corrupted = |problem: String| Error::Corrupted {
        path: path.to_path_buf(),
        problem,
    };
    let reader = BufReader::new(age::armor::ArmoredReader::new(input));
    let decryptor = age::Decryptor::new_buffered(reader).map_err(|e| match e {
        age::DecryptError::UnknownFormat | age::DecryptError::InvalidHeader => {
            corrupted("it is not an age file, or its header is damaged".into())
        }
        other => corrupted(other.to_string()),
    })?;
    if decryptor.is_scrypt() {
        return Err(Error::Invalid(format!(
            "`{}` is encrypted with a passphrase; a store must be encrypted to recipients (`age -R`)",
            path.display()
        )));
    }
    let mut stream = decryptor.decrypt(identities.iter()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => Error::WrongIdentity {
            path: path.to_path_buf(),
            identities: identities.describe_files(),
        },
        age::DecryptError::InvalidMac | age::DecryptError::InvalidHeader => {
            corrupted("its header does not match its contents".into())
        }
        other => corrupted(other.to_string()),
    })?;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(size));
    stream
        .read_to_end(&mut plaintext)
        .map_err(|_| corrupted("its contents fail authentication: truncated or modified".into()))?;
    Ok(plaintext)
}
