//! Dynamic endpoints' records at rest: sealed under `server.store_key`, opened when read.
//!
//! Owns what crosses the store seam as a dynamic endpoint's `spec`: with a store key, every
//! write is sealed ([`crate::seal`]) and every read opened, whichever backend runs (this module
//! sees only [`Store`]). The whole record is sealed, not only its signing keys: URLs and
//! headers often carry credentials too. Also owns the start's checks (a sealed record needs the
//! key it was sealed with, or the start fails; clear records are sealed once a key is
//! configured) and the re-sealing behind `switchyard store rotate-key`.
//!
//! It must not interpret a record (that is [`super::model`]) nor decide what the registry
//! does with one.

use crate::seal::{self, SealError, StoreKey};
use crate::store::{Store, StoreError, StoredEndpoint};

/// Why the stored endpoints could not be opened or sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealedError {
    #[error(
        "stored endpoint `{endpoint}` is sealed with store key id `{key_id}`, and \
         `server.store_key` is not set; set it to the `[secrets]` entry holding that key"
    )]
    NoKey { endpoint: String, key_id: String },
    #[error(
        "stored endpoint `{endpoint}` is sealed with store key id `{sealed_with}`, but \
         `server.store_key` names `{key_name}` (key id `{key_id}`); configure the key it was \
         sealed with (`switchyard store rotate-key` moves the store to another key)"
    )]
    WrongKey { endpoint: String, sealed_with: String, key_name: String, key_id: String },
    #[error("stored endpoint `{endpoint}`: {source}")]
    Seal { endpoint: String, source: SealError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`rotate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rotation {
    /// Records sealed again under the new key (clear ones included).
    pub resealed: usize,
    /// Records already under the new key (an earlier, interrupted rotation).
    pub already: usize,
}

/// `spec` as the store should keep it for endpoint `id`: sealed under `key`, or as is.
pub fn seal_spec(key: Option<&StoreKey>, id: &str, spec: String) -> Result<String, SealedError> {
    match key {
        Some(key) => key
            .seal(id, &spec)
            .map_err(|source| SealedError::Seal { endpoint: id.to_owned(), source }),
        None => Ok(spec),
    }
}

/// `row` with its `spec` opened: a sealed one needs `key`, a clear one is taken as is.
pub fn open_row(
    key: Option<&StoreKey>,
    row: StoredEndpoint,
) -> Result<StoredEndpoint, SealedError> {
    let Some(sealed_with) = seal::sealed_key_id(&row.spec) else { return Ok(row) };
    let Some(key) = key else {
        return Err(SealedError::NoKey { endpoint: row.id, key_id: sealed_with.to_owned() });
    };
    match key.open(&row.id, &row.spec) {
        Ok(spec) => Ok(StoredEndpoint { spec, ..row }),
        Err(SealError::WrongKey { sealed_with, key_name, key_id }) => {
            Err(SealedError::WrongKey { endpoint: row.id, sealed_with, key_name, key_id })
        }
        Err(source) => Err(SealedError::Seal { endpoint: row.id, source }),
    }
}

/// The stored dynamic endpoints, opened, for the start. With a key, records still in clear
/// are sealed now (the first start with a key seals everything, then scrubs the store: slow on
/// a large store, once); without one, a store holding
/// dynamic endpoints gets a warning. Fails on the first record that does not open, naming it:
/// starting without a secret would lose it silently.
pub async fn open_at_start(
    store: &Store,
    key: Option<&StoreKey>,
) -> Result<Vec<StoredEndpoint>, SealedError> {
    let rows = store.endpoints().await?;
    let mut opened = Vec::with_capacity(rows.len());
    let mut clear = Vec::new();
    for row in rows {
        if !seal::is_sealed(&row.spec) {
            clear.push(row.clone());
        }
        opened.push(open_row(key, row)?);
    }
    match key {
        Some(key) if !clear.is_empty() => {
            let count = clear.len();
            for row in clear {
                let spec = seal_spec(Some(key), &row.id, row.spec.clone())?;
                store.put_endpoint(StoredEndpoint { spec, ..row }).await?;
            }
            // The records in clear must not linger in the store's files.
            store.scrub().await?;
            tracing::info!(
                count,
                store_key = key.name(),
                key_id = key.id(),
                "sealed stored dynamic endpoints that were in clear"
            );
        }
        Some(_) => {}
        None if !opened.is_empty() => tracing::warn!(
            count = opened.len(),
            "`server.store_key` is not set: dynamic endpoints' signing secrets and client keys \
             are stored in clear"
        ),
        None => {}
    }
    Ok(opened)
}

/// Seals every stored dynamic endpoint under `to`: records sealed with `from` (or in clear)
/// are opened and sealed again; records already under `to` are left as they are, so an
/// interrupted rotation is finished by running it again. Nothing else may write endpoints
/// meanwhile (the router is stopped).
pub async fn rotate(
    store: &Store,
    from: Option<&StoreKey>,
    to: &StoreKey,
) -> Result<Rotation, SealedError> {
    let mut rotation = Rotation::default();
    for row in store.endpoints().await? {
        if seal::sealed_key_id(&row.spec) == Some(to.id()) {
            // Opened to be sure it is whole, not only labelled with the right id.
            open_row(Some(to), row)?;
            rotation.already += 1;
            continue;
        }
        let opened = open_row(from, row)?;
        let spec = seal_spec(Some(to), &opened.id, opened.spec.clone())?;
        store.put_endpoint(StoredEndpoint { spec, ..opened }).await?;
        rotation.resealed += 1;
    }
    if rotation.resealed > 0 {
        // Nor may what the old key sealed, should it leak later.
        store.scrub().await?;
    }
    Ok(rotation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, spec: &str) -> StoredEndpoint {
        StoredEndpoint {
            id: id.into(),
            kind: "endpoint".into(),
            spec: spec.into(),
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn clear_rows_pass_and_sealed_rows_need_their_key() {
        let old = StoreKey::from_bytes("old", [1; 32]);
        let new = StoreKey::from_bytes("new", [2; 32]);
        assert_eq!(open_row(None, row("ep_a", "{}")).unwrap().spec, "{}");
        assert_eq!(open_row(Some(&old), row("ep_a", "{}")).unwrap().spec, "{}");

        let sealed = seal_spec(Some(&old), "ep_a", "{\"k\":1}".into()).unwrap();
        assert_eq!(open_row(Some(&old), row("ep_a", &sealed)).unwrap().spec, "{\"k\":1}");
        let error = open_row(None, row("ep_a", &sealed)).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "stored endpoint `ep_a` is sealed with store key id `{}`, and `server.store_key` \
                 is not set; set it to the `[secrets]` entry holding that key",
                old.id()
            )
        );
        let error = open_row(Some(&new), row("ep_a", &sealed)).unwrap_err();
        assert!(matches!(&error, SealedError::WrongKey { key_name, .. } if key_name == "new"));
        assert!(error.to_string().contains(new.id()), "{error}");
        // A record moved to another id does not open.
        let error = open_row(Some(&old), row("ep_b", &sealed)).unwrap_err();
        assert!(matches!(error, SealedError::Seal { source: SealError::Damaged { .. }, .. }));
    }
}
