//! Validation of `[telemetry]`: raw OTLP settings → [`Telemetry`], every problem collected.
//!
//! Pure: it checks the collector URL, protocol and sample share and fills in defaults. It
//! must not connect anywhere; `traces` builds the exporter from the result.

use url::Url;

use super::ConfigError;
use super::raw::TelemetryConfig;
use super::topology::{Otlp, OtlpProtocol, Telemetry};

const DEFAULT_HTTP_ENDPOINT: &str = "http://127.0.0.1:4318";
const DEFAULT_GRPC_ENDPOINT: &str = "http://127.0.0.1:4317";

pub(super) fn validate(raw: TelemetryConfig, errors: &mut Vec<ConfigError>) -> Telemetry {
    let Some(otlp) = raw.otlp else { return Telemetry::default() };
    let mut error = |path: &str, message: String, example: &str| {
        errors.push(ConfigError {
            path: format!("telemetry.otlp.{path}"),
            message,
            example: Some(example.to_owned()),
        });
    };
    let protocol = match otlp.protocol.as_deref() {
        None | Some("http") => OtlpProtocol::Http,
        Some("grpc") => OtlpProtocol::Grpc,
        Some(other) => {
            let message = format!("`{other}` is not an OTLP protocol; expected `http` or `grpc`");
            error("protocol", message, "protocol = \"http\"");
            OtlpProtocol::Http
        }
    };
    let default_endpoint = match protocol {
        OtlpProtocol::Http => DEFAULT_HTTP_ENDPOINT,
        OtlpProtocol::Grpc => DEFAULT_GRPC_ENDPOINT,
    };
    let endpoint_example = format!("endpoint = \"{default_endpoint}\"");
    let text = otlp.endpoint.as_deref().unwrap_or(default_endpoint);
    let endpoint = match Url::parse(text) {
        Ok(url) if protocol == OtlpProtocol::Grpc && url.scheme() == "https" => {
            let message = format!(
                "`{text}`: `grpc` is exported over plain-text `http://` only (a local collector \
                 or agent); use `protocol = \"http\"` for an `https://` collector"
            );
            error("endpoint", message, &endpoint_example);
            None
        }
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(_) => {
            let message = format!("`{text}` is not an `http://` or `https://` URL with a host");
            error("endpoint", message, &endpoint_example);
            None
        }
        Err(problem) => {
            let message = format!("`{text}` is not a URL: {problem}");
            error("endpoint", message, &endpoint_example);
            None
        }
    };
    let sample = otlp.sample.unwrap_or(1.0);
    let sample = if (0.0..=1.0).contains(&sample) {
        sample
    } else {
        let message = format!("`{sample}` is not a share of traces; expected a number from 0 to 1");
        error("sample", message, "sample = 0.1");
        1.0
    };
    let Some(endpoint) = endpoint else { return Telemetry::default() };
    Telemetry { otlp: Some(Otlp { endpoint, protocol, sample }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::OtlpConfig;

    fn check(otlp: OtlpConfig) -> (Telemetry, Vec<String>) {
        let mut errors = Vec::new();
        let telemetry = validate(TelemetryConfig { otlp: Some(otlp) }, &mut errors);
        (telemetry, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_export_everything_over_http_to_a_local_collector() {
        let (telemetry, errors) = check(OtlpConfig::default());
        assert!(errors.is_empty(), "{errors:?}");
        let otlp = telemetry.otlp.unwrap();
        assert_eq!(otlp.endpoint.as_str(), "http://127.0.0.1:4318/");
        assert_eq!(otlp.protocol, OtlpProtocol::Http);
        assert_eq!(otlp.sample, 1.0);
        let grpc = OtlpConfig { protocol: Some("grpc".into()), ..OtlpConfig::default() };
        let otlp = check(grpc).0.otlp.unwrap();
        assert_eq!(otlp.endpoint.as_str(), "http://127.0.0.1:4317/");
        assert_eq!(otlp.protocol, OtlpProtocol::Grpc);
        let mut errors = Vec::new();
        assert!(validate(TelemetryConfig::default(), &mut errors).otlp.is_none());
    }

    #[test]
    fn every_bad_setting_is_reported_with_an_example() {
        let (telemetry, errors) = check(OtlpConfig {
            endpoint: Some("ftp://collector".into()),
            protocol: Some("udp".into()),
            sample: Some(1.5),
        });
        assert!(telemetry.otlp.is_none());
        assert_eq!(
            errors,
            [
                "telemetry.otlp.protocol: `udp` is not an OTLP protocol; expected `http` or \
                 `grpc`\n  example: protocol = \"http\"",
                "telemetry.otlp.endpoint: `ftp://collector` is not an `http://` or `https://` \
                 URL with a host\n  example: endpoint = \"http://127.0.0.1:4318\"",
                "telemetry.otlp.sample: `1.5` is not a share of traces; expected a number from \
                 0 to 1\n  example: sample = 0.1",
            ]
        );
        let (_, errors) = check(OtlpConfig { sample: Some(-0.1), ..OtlpConfig::default() });
        assert_eq!(errors.len(), 1);
        let (_, errors) = check(OtlpConfig {
            endpoint: Some("https://collector.example.com".into()),
            protocol: Some("grpc".into()),
            ..OtlpConfig::default()
        });
        assert_eq!(
            errors,
            ["telemetry.otlp.endpoint: `https://collector.example.com`: `grpc` is exported over \
              plain-text `http://` only (a local collector or agent); use `protocol = \"http\"` \
              for an `https://` collector\n  example: endpoint = \"http://127.0.0.1:4317\""]
        );
        let (_, errors) =
            check(OtlpConfig { endpoint: Some("not a url".into()), ..OtlpConfig::default() });
        assert!(errors[0].starts_with("telemetry.otlp.endpoint: `not a url` is not a URL"));
    }
}
