//! A stand-in for AWS endpoints that take SigV4-signed HTTP (Amazon Managed Prometheus, Amazon
//! OpenSearch Service, X-Ray's sampling API, which moto does not serve), written for the tests (not a real component): it checks each request's
//! signature with the collector's independent verifier (secret `testing`, as `start_sextant`
//! gives the collector) and keeps what it got. It answers a bulk request as OpenSearch does
//! (every item created), `GET /_cluster/health` with a green cluster, X-Ray's sampling calls
//! with rules and targets (see [`SAMPLING_RULES`]), anything else 204; a bad
//! signature gets 403.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use sextant_pipeline::net::aws::sigv4_check::verify;

use super::read_request;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Checked {
    pub method: String,
    pub path: String,
    /// `access key/region/service` of a signature that verifies, or why it does not.
    pub scope: Result<String, String>,
    /// The body as sent (compressed if it was).
    pub body: Vec<u8>,
}

pub type Seen = Arc<Mutex<Vec<Checked>>>;

/// The receiver's port and what it saw.
pub fn signature_checking_receiver() -> (u16, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Default::default();
    let keep = seen.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let keep = keep.clone();
            std::thread::spawn(move || {
                while let Ok(Some((head, body))) = read_request(&mut conn) {
                    let mut lines = head.lines();
                    let request_line: Vec<String> = lines
                        .next()
                        .unwrap()
                        .split(' ')
                        .map(str::to_owned)
                        .collect();
                    let (path, query) = request_line[1]
                        .split_once('?')
                        .unwrap_or((&request_line[1], ""));
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .collect();
                    let scope = verify(&request_line[0], path, query, &headers, &body, "testing")
                        .map(|s| format!("{}/{}/{}", s.access_key, s.region, s.service));
                    let answer = match (&scope, path) {
                        (Err(_), _) => ("403 Forbidden", String::new()),
                        (Ok(_), p) if p.ends_with("/_bulk") => {
                            ("200 OK", bulk_answer(&body, &headers))
                        }
                        (Ok(_), "/_cluster/health") => ("200 OK", r#"{"status":"green"}"#.into()),
                        (Ok(_), "/GetSamplingRules") => ("200 OK", SAMPLING_RULES.into()),
                        (Ok(_), "/SamplingTargets") => ("200 OK", sampling_targets(&body)),
                        (Ok(_), _) => ("204 No Content", String::new()),
                    };
                    keep.lock().unwrap().push(Checked {
                        method: request_line[0].clone(),
                        path: path.to_owned(),
                        scope,
                        body,
                    });
                    let (status, text) = answer;
                    if write!(
                        conn,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    )
                    .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// X-Ray's `GetSamplingRules` answer (its documented shape): `legacy-app` is always sampled,
/// `unsampled-app` never (no reservoir, rate 0), so an SDK that applies them proves it got them.
pub const SAMPLING_RULES: &str = r#"{"SamplingRuleRecords":[
 {"SamplingRule":{"RuleName":"legacy","RuleARN":"arn:aws:xray:eu-west-1:123456789012:sampling-rule/legacy","ResourceARN":"*","Priority":1,"FixedRate":1.0,"ReservoirSize":0,"ServiceName":"legacy-app","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"*","Version":1,"Attributes":{}},"CreatedAt":1700000000.0,"ModifiedAt":1700000000.0},
 {"SamplingRule":{"RuleName":"never","RuleARN":"arn:aws:xray:eu-west-1:123456789012:sampling-rule/never","ResourceARN":"*","Priority":2,"FixedRate":0.0,"ReservoirSize":0,"ServiceName":"unsampled-app","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"*","Version":1,"Attributes":{}},"CreatedAt":1700000000.0,"ModifiedAt":1700000000.0}
]}"#;

/// X-Ray's `GetSamplingTargets` answer for the rules a request reports on.
fn sampling_targets(body: &[u8]) -> String {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let documents: Vec<serde_json::Value> = request["SamplingStatisticsDocuments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            serde_json::json!({
                "RuleName": d["RuleName"], "FixedRate": 1.0, "ReservoirQuota": 1,
                "ReservoirQuotaTTL": 1900000000.0, "Interval": 10
            })
        })
        .collect();
    serde_json::json!({
        "SamplingTargetDocuments": documents,
        "LastRuleModification": 1700000000.0,
        "UnprocessedStatistics": []
    })
    .to_string()
}

/// The NDJSON of a bulk body (gunzipped when it was sent gzipped).
pub fn bulk_ndjson(body: &[u8], headers: &[(String, String)]) -> String {
    let gzipped = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-encoding") && v == "gzip");
    if !gzipped {
        return String::from_utf8_lossy(body).into_owned();
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn bulk_answer(body: &[u8], headers: &[(String, String)]) -> String {
    let items = bulk_ndjson(body, headers).lines().count() / 2;
    let item = r#"{"create":{"_index":"x","status":201}}"#;
    format!(
        r#"{{"took":1,"errors":false,"items":[{}]}}"#,
        vec![item; items].join(",")
    )
}
