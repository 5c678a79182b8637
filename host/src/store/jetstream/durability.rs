//! Whether the JetStream servers make a write durable before they acknowledge it.
//!
//! A NATS client cannot see a server's fsync setting: neither the connection's `INFO` nor the
//! JetStream account API (`$JS.API.INFO`) carries it; the server's own configuration is
//! published by its monitoring endpoint (`/varz`, whose `jetstream.config.sync_always` is true
//! only under `sync_interval: always`) and by the system account's `$SYS.REQ.SERVER.PING.VARZ`,
//! which an ordinary account may not call. So `server.durability = "fsync"` reads `/varz` of
//! every URL in `store.monitor_urls` at start and refuses to run unless each says
//! `sync_always`; `"os"` accepts the servers' own setting (by default a JetStream server
//! fsyncs every two minutes) and says so in the log. Owns that check and its pure verdict.

use serde::Deserialize;
use url::Url;

/// The part of `/varz` the check reads.
#[derive(Debug, Deserialize)]
struct Varz {
    server_name: Option<String>,
    jetstream: Option<VarzJetStream>,
}

#[derive(Debug, Deserialize)]
struct VarzJetStream {
    config: Option<VarzJetStreamConfig>,
}

#[derive(Debug, Deserialize)]
struct VarzJetStreamConfig {
    #[serde(default)]
    sync_always: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DurabilityError {
    #[error("cannot read `{url}` to check the server's fsync setting: {reason}")]
    Unreadable { url: Url, reason: String },
    #[error(
        "the NATS server `{server}` (`{url}`) does not fsync each write (its `jetstream` block \
         lacks `sync_interval: always`), so `server.durability = \"fsync\"` cannot hold; set \
         `sync_interval: always` on every server, or `server.durability = \"os\"` to accept it"
    )]
    NotSynced { server: String, url: Url },
    #[error("`{url}` runs no JetStream")]
    NoJetStream { url: Url },
}

/// The verdict on one server's `/varz` body.
fn verdict(url: &Url, body: &[u8]) -> Result<(), DurabilityError> {
    let varz: Varz = serde_json::from_slice(body).map_err(|error| DurabilityError::Unreadable {
        url: url.clone(),
        reason: error.to_string(),
    })?;
    let Some(config) = varz.jetstream.and_then(|jetstream| jetstream.config) else {
        return Err(DurabilityError::NoJetStream { url: url.clone() });
    };
    if config.sync_always {
        Ok(())
    } else {
        let server = varz.server_name.unwrap_or_else(|| url.to_string());
        Err(DurabilityError::NotSynced { server, url: url.clone() })
    }
}

/// Reads `/varz` of every monitoring URL; every server must fsync each write.
pub async fn check_servers_sync_always(monitor_urls: &[Url]) -> Result<(), DurabilityError> {
    let client = reqwest::Client::new();
    for base in monitor_urls {
        let url = base.join("varz").unwrap_or_else(|_| base.clone());
        let unreadable = |reason: String| DurabilityError::Unreadable { url: url.clone(), reason };
        let response = client
            .get(url.clone())
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| unreadable(error.to_string()))?;
        let body = response.bytes().await.map_err(|error| unreadable(error.to_string()))?;
        verdict(base, &body)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("http://127.0.0.1:8222").unwrap()
    }

    #[test]
    fn only_servers_that_sync_always_pass() {
        let synced = br#"{"server_name":"n1","jetstream":{"config":{"sync_always":true}}}"#;
        assert!(verdict(&url(), synced).is_ok());
        let lazy = br#"{"server_name":"n2","jetstream":{"config":{"sync_interval":120000000000}}}"#;
        let error = verdict(&url(), lazy).unwrap_err().to_string();
        assert!(error.contains("`n2`") && error.contains("sync_interval: always"), "{error}");
        let plain = br#"{"server_name":"n3"}"#;
        assert!(matches!(verdict(&url(), plain), Err(DurabilityError::NoJetStream { .. })));
        assert!(matches!(verdict(&url(), b"<html>"), Err(DurabilityError::Unreadable { .. })));
    }
}
