//! An independent SigV4 verifier, written from AWS's description of the algorithm (canonical
//! request, string to sign, derived key), not from the SDK's code: the tests check what
//! [`super::sigv4`] signs against it, and the end-to-end tests' verifying server uses it. It
//! checks the signature of a request whose headers and body it is given; it does not check the
//! date against a clock.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Who signed, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| {
        // HMAC takes keys of any length; this is unreachable.
        hmac::Hmac::<Sha256>::new_from_slice(&[0]).unwrap_or_else(|_| unreachable!())
    });
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn field<'a>(auth: &'a str, name: &str) -> Result<&'a str, String> {
    auth.split([',', ' '])
        .find_map(|part| part.trim().strip_prefix(name)?.strip_prefix('='))
        .ok_or_else(|| format!("no {name} in the authorization header"))
}

/// Verifies a signed request: `path` and `query` as sent (already URI-encoded), `headers` as
/// (name, value) pairs, `secret` the signer's secret key.
pub fn verify(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
) -> Result<Scope, String> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let auth = header("authorization").ok_or("no authorization header")?;
    let auth = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let credential = field(auth, "Credential")?;
    let signed_headers = field(auth, "SignedHeaders")?;
    let signature = field(auth, "Signature")?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = parts[..] else {
        return Err(format!("malformed credential scope {credential}"));
    };
    let amz_date = header("x-amz-date").ok_or("no x-amz-date")?;
    if !amz_date.starts_with(date) {
        return Err("x-amz-date is not the scope's date".into());
    }
    let payload = sha256_hex(body);
    if let Some(claimed) = header("x-amz-content-sha256") {
        if claimed != payload {
            return Err("x-amz-content-sha256 is not the body's".into());
        }
    }
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(format!("signed header {name} is missing"));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let mut query_pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    query_pairs.sort_unstable();
    let canonical_query: Vec<String> = query_pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some(_) => (*p).to_owned(),
            None => format!("{p}="),
        })
        .collect();
    let canonical_request = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{payload}",
        canonical_query.join("&")
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date);
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part);
    }
    let expected = hex(&hmac(&key, &string_to_sign));
    if expected != signature {
        return Err(format!(
            "signature mismatch (canonical request:\n{canonical_request})"
        ));
    }
    Ok(Scope {
        access_key: access_key.into(),
        date: date.into(),
        region: region.into(),
        service: service.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use aws_credential_types::Credentials;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_verifier_accepts_awss_published_get_vanilla_example() {
        // From AWS's SigV4 test suite ("get-vanilla").
        let headers = pairs(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ]);
        let scope = verify("GET", "/", "", &headers, b"", SECRET).unwrap();
        assert_eq!(scope.service, "service");
        assert!(verify("GET", "/", "", &headers, b"", "another secret").is_err());
    }

    fn signed(body: &[u8], token: Option<&str>) -> http::Request<()> {
        let mut request = http::Request::post(
            "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write",
        )
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(())
        .unwrap();
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            SECRET,
            token.map(str::to_owned),
            None,
            "test",
        );
        // 2015-08-30T12:36:00Z
        let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        super::super::sigv4::sign_request(
            &mut request,
            body,
            &credentials,
            "us-east-1",
            "aps",
            time,
        )
        .unwrap();
        request
    }

    fn check(request: &http::Request<()>, body: &[u8]) -> Result<Scope, String> {
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let mut headers = headers;
        // The client sends Host from the URL.
        if !headers.iter().any(|(k, _)| k == "host") {
            headers.push(("host".into(), request.uri().host().unwrap().into()));
        }
        verify(
            request.method().as_str(),
            request.uri().path(),
            request.uri().query().unwrap_or(""),
            &headers,
            body,
            SECRET,
        )
    }

    #[test]
    fn what_the_sink_signs_with_the_sdks_signer_verifies_independently() {
        let body = b"\x0a\x05snappy protobuf";
        let request = signed(body, None);
        let headers = request.headers();
        assert_eq!(headers["x-amz-date"], "20150830T123600Z");
        assert_eq!(headers["x-amz-content-sha256"], sha256_hex(body).as_str());
        let scope = check(&request, body).unwrap();
        assert_eq!(
            scope,
            Scope {
                access_key: "AKIDEXAMPLE".into(),
                date: "20150830".into(),
                region: "us-east-1".into(),
                service: "aps".into(),
            }
        );
        let auth = headers["authorization"].to_str().unwrap();
        for signed in ["content-encoding", "content-type", "host", "x-amz-date"] {
            assert!(auth.contains(signed), "{signed} is signed: {auth}");
        }
        // Another body, or another header value, does not verify.
        assert!(check(&request, b"another body").is_err());
        let mut changed = request;
        changed
            .headers_mut()
            .insert("content-encoding", http::HeaderValue::from_static("gzip"));
        assert!(check(&changed, body).is_err());
    }

    #[test]
    fn temporary_credentials_send_and_sign_their_session_token() {
        let body = b"{}";
        let request = signed(body, Some("session-token-from-irsa"));
        assert_eq!(
            request.headers()["x-amz-security-token"],
            "session-token-from-irsa"
        );
        assert!(request.headers()["authorization"]
            .to_str()
            .unwrap()
            .contains("x-amz-security-token"));
        check(&request, body).unwrap();
    }
}
