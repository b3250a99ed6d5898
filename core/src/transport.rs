//! HTTP delivery of one request body, behind the [`Transport`] trait.
//!
//! The worker only builds a [`Request`] and reads an [`Outcome`]; everything about sockets is
//! here. [`HttpTransport`] uses `ureq`, which is blocking and needs no async runtime, so a
//! client can be created and dropped inside a tokio runtime. Proxies from the environment are
//! not used: requests go to `api_host` only.

use std::io::Read;
use std::time::Duration;

use base64::Engine;

use crate::protocol::Endpoint;
use crate::retry::Outcome;

/// The largest response body the worker reads; longer bodies are cut.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// One POST request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The endpoint, for logs.
    pub endpoint: Endpoint,
    /// The full URL with its query string.
    pub url: String,
    /// The body, possibly gzip-compressed.
    pub body: Vec<u8>,
    /// Whether `body` is gzip-compressed.
    pub gzip: bool,
    /// The value of the `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// Sends requests. Implemented by [`HttpTransport`] and by scripted transports in tests.
pub(crate) trait Transport: Send {
    /// Sends one request and returns what happened.
    fn send(&mut self, request: &Request) -> Outcome;

    /// Returns a second transport to the same server that can send while this one waits, or
    /// `None` when the worker must send one request at a time.
    fn try_clone(&self) -> Option<Box<dyn Transport>> {
        None
    }
}

/// Builds the URL of `endpoint` on `api_host`.
pub(crate) fn endpoint_url(api_host: &str, endpoint: Endpoint, project_id: Option<&str>) -> String {
    let host = api_host.trim_end_matches('/');
    let path = endpoint.path();
    match endpoint {
        Endpoint::Import => match project_id {
            Some(project_id) => format!(
                "{host}{path}?strict=1&project_id={}",
                percent_encode(project_id)
            ),
            None => format!("{host}{path}?strict=1"),
        },
        _ => format!("{host}{path}?verbose=1"),
    }
}

/// Returns the HTTP Basic `Authorization` value for `/import`: `credentials` as `user:password`,
/// or the token as the user with an empty password.
pub(crate) fn import_authorization(token: &str, credentials: Option<&str>) -> String {
    let user_password = match credentials {
        Some(credentials) => credentials.to_owned(),
        None => format!("{token}:"),
    };
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_password)
    )
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The maximum request timeout passed to `ureq`. ureq 3.5 panics when the timeout added to the
/// current instant overflows, as `Duration::MAX` does.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(365 * 86_400);

/// Sends requests with `ureq`.
pub(crate) struct HttpTransport {
    agent: ureq::Agent,
}

impl HttpTransport {
    /// Creates a transport whose every step of a request (connecting, sending the request and
    /// its body, waiting for the response and reading its body) ends after `timeout`, capped
    /// at [`MAX_REQUEST_TIMEOUT`].
    ///
    /// NOTE: name resolution has no timeout. With a timeout on the whole call, ureq 3.5
    /// resolves each new connection's host in a new thread. A thread that starts or ends
    /// while the process forks holds a lock of Rust's thread runtime, and the child then hangs
    /// when it starts its own worker thread.
    pub(crate) fn new(timeout: Duration) -> Self {
        let timeout = Some(timeout.min(MAX_REQUEST_TIMEOUT));
        let config = ureq::Agent::config_builder()
            .timeout_connect(timeout)
            .timeout_send_request(timeout)
            .timeout_send_body(timeout)
            .timeout_recv_response(timeout)
            .timeout_recv_body(timeout)
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .user_agent(format!("{}/{}", crate::LIB_NAME, crate::LIB_VERSION))
            .build();
        HttpTransport {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

impl Transport for HttpTransport {
    /// Clones the agent, which shares its connection pool, so each clone keeps its own
    /// connection open.
    fn try_clone(&self) -> Option<Box<dyn Transport>> {
        Some(Box::new(HttpTransport {
            agent: self.agent.clone(),
        }))
    }

    fn send(&mut self, request: &Request) -> Outcome {
        let mut builder = self
            .agent
            .post(&request.url)
            .header("Content-Type", "application/json");
        if request.gzip {
            builder = builder.header("Content-Encoding", "gzip");
        }
        if let Some(authorization) = &request.authorization {
            builder = builder.header("Authorization", authorization);
        }

        match builder.send(&request.body[..]) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let mut bytes = Vec::new();
                let read = response
                    .body_mut()
                    .as_reader()
                    .take(MAX_RESPONSE_BYTES)
                    .read_to_end(&mut bytes);
                if let Err(error) = read {
                    log::debug!(
                        "Reading the {} response body failed: {error}",
                        request.endpoint.path()
                    );
                }
                Outcome::Response {
                    status,
                    retry_after,
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                }
            }
            Err(ureq::Error::Timeout(_)) => Outcome::Timeout,
            Err(error) => Outcome::NetworkError(describe_network_error(&request.url, &error)),
        }
    }
}

/// Describes a failed request. A TLS handshake that gets a non-TLS response most often means
/// an `https://` address of a plain HTTP server, so that message suggests `http://`.
fn describe_network_error(url: &str, error: &ureq::Error) -> String {
    let message = error.to_string();
    if url.starts_with("https://") && message.contains("InvalidContentType") {
        return format!(
            "{message} (the server at {url} did not answer with TLS; if it serves plain HTTP, start api_host with http://)"
        );
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_verbose_or_strict() {
        assert_eq!(
            endpoint_url("http://127.0.0.1:9/", Endpoint::Track, None),
            "http://127.0.0.1:9/track?verbose=1"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:9", Endpoint::Import, Some("12 3")),
            "http://127.0.0.1:9/import?strict=1&project_id=12%203"
        );
    }

    #[test]
    fn import_authorization_uses_token_as_user() {
        assert_eq!(import_authorization("tok", None), "Basic dG9rOg==");
        assert_eq!(
            import_authorization("tok", Some("sa:secret")),
            "Basic c2E6c2VjcmV0"
        );
    }

    #[test]
    fn https_to_plain_http_server_suggests_http() {
        use std::io::{Read, Write};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        });

        let mut transport = HttpTransport::new(Duration::from_secs(5));
        let outcome = transport.send(&Request {
            endpoint: Endpoint::Track,
            url: format!("https://{address}/track"),
            body: b"[]".to_vec(),
            gzip: false,
            authorization: None,
        });
        server.join().unwrap();

        let Outcome::NetworkError(message) = outcome else {
            panic!("expected a network error, got {outcome:?}");
        };
        assert!(message.contains("start api_host with http://"), "{message}");
    }
}
