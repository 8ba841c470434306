//! The last refusal of each meter's credentials (an authentication failure, an HLS proof
//! that did not verify): written by the bridge's worker and by `meter test`, read by
//! `meter test` before it associates, cleared by the next association that succeeds. Many
//! meters lock their password or port after 3 failed authentications; the bridge tries a
//! refused one once an hour, and `meter test` did not know (a new user ran it three times
//! on a refused password).

use super::{Result, Store};
use rusqlite::{params, OptionalExtension};

/// A refusal on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRefusal {
    /// The fingerprint of the credentials refused (`config::MeterConfig::credentials_fingerprint`).
    pub secret: String,
    pub at_ms: i64,
    /// Who was refused: "the bridge" or "meter test".
    pub by: String,
}

impl AuthRefusal {
    /// `meter`'s present credentials refused now, by `by`.
    pub fn now(meter: &crate::config::MeterConfig, by: &str) -> AuthRefusal {
        AuthRefusal {
            secret: meter.credentials_fingerprint(),
            at_ms: crate::clock::now_ms(),
            by: by.to_string(),
        }
    }
}

impl Store {
    pub fn record_auth_refusal(&self, meter: &str, refusal: &AuthRefusal) -> Result<()> {
        self.conn.execute(
            "INSERT INTO auth_refusals (meter, secret, at_ms, by) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (meter) DO UPDATE SET secret = ?2, at_ms = ?3, by = ?4",
            params![meter, refusal.secret, refusal.at_ms, refusal.by],
        )?;
        Ok(())
    }

    pub fn auth_refusal(&self, meter: &str) -> Result<Option<AuthRefusal>> {
        Ok(self
            .conn
            .query_row(
                "SELECT secret, at_ms, by FROM auth_refusals WHERE meter = ?1",
                params![meter],
                |r| {
                    Ok(AuthRefusal {
                        secret: r.get(0)?,
                        at_ms: r.get(1)?,
                        by: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// The meters with a refusal on record (the bridge reads them once per configuration,
    /// so that a meter thread opens the database only to clear one it has).
    pub fn auth_refused_meters(&self) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self.conn.prepare("SELECT meter FROM auth_refusals")?;
        let names = stmt.query_map([], |r| r.get(0))?;
        Ok(names.collect::<rusqlite::Result<_>>()?)
    }

    pub fn clear_auth_refusal(&self, meter: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM auth_refusals WHERE meter = ?1", params![meter])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_kept_replaced_and_cleared() {
        let dir = std::env::temp_dir().join(format!("auth-refusals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("b.db")).unwrap();
        assert_eq!(store.auth_refusal("M").unwrap(), None);
        let first = AuthRefusal {
            secret: "aa".into(),
            at_ms: 1,
            by: "the bridge".into(),
        };
        store.record_auth_refusal("M", &first).unwrap();
        assert_eq!(store.auth_refusal("M").unwrap(), Some(first));
        let second = AuthRefusal {
            secret: "bb".into(),
            at_ms: 2,
            by: "meter test".into(),
        };
        store.record_auth_refusal("M", &second).unwrap();
        assert_eq!(store.auth_refusal("M").unwrap(), Some(second));
        assert_eq!(store.auth_refusal("N").unwrap(), None);
        assert_eq!(
            store.auth_refused_meters().unwrap(),
            std::iter::once("M".to_string()).collect()
        );
        store.clear_auth_refusal("M").unwrap();
        assert!(store.auth_refused_meters().unwrap().is_empty());
        assert_eq!(store.auth_refusal("M").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
