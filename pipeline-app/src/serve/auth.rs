//! The token check: `Authorization: Bearer SECRET` on HTTP, `?token=SECRET` on WebSocket URLs
//! (browsers cannot set headers on a WebSocket), before any upgrade or work.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Server;

/// `None` when the server needs no token or the request carries it; a 401 otherwise.
pub(crate) fn refusal(
    server: &Server,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Option<Response> {
    let secret = server.token.as_deref()?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let given = bearer.or(query_token);
    if given.is_some_and(|given| same_secret(given.as_bytes(), secret.as_bytes())) {
        return None;
    }
    let problem = if given.is_some() {
        "the token is wrong"
    } else {
        "this server needs a token: `Authorization: Bearer SECRET`, or `?token=SECRET` on a \
         WebSocket URL"
    };
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            super::openai::error_body(problem, "invalid_api_key"),
        )
            .into_response(),
    )
}

/// Compares two secrets in time that depends only on their lengths, so the time a wrong
/// token takes tells nothing about the right one.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    if given.len() != secret.len() {
        return false;
    }
    given
        .iter()
        .zip(secret)
        .fold(0u8, |differ, (a, b)| differ | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn only_the_same_secret_is_the_same() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3creT", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }
}
