//! Pure: spans in, PutTraceSegments requests out, within X-Ray's limits — at most 50 documents a
//! request, at most 64 kB a document.
//!
//! A document over 64 kB is trimmed, least useful first: metadata, then the SQL query text,
//! then exception causes, then annotations; one still too large (a name cannot be) is dropped
//! and counted. A span that arrived as an X-Ray segment over the daemon's UDP protocol carries
//! its original document in the attribute [`RAW_SEGMENT_ATTRIBUTE`] and goes out unchanged; the
//! child spans made from subsegments nested in it ([`NESTED_ATTRIBUTE`]) are inside that
//! document already and are not sent again.

use serde_json::{Map, Value as Json};

use sextant_pipeline::flow::event::{find_attribute, Span};

use super::annotations::AnnotationStats;
use super::ids::segment_id;
use super::segment::{document, Indexing};

pub const MAX_DOCUMENTS_PER_REQUEST: usize = 50;
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The span attribute holding a segment document received as is (by the `xray_udp` source).
pub use sextant_pipeline::sources::xray_udp::parse::RAW_SEGMENT_ATTRIBUTE;
pub use sextant_pipeline::sources::xray_udp::segment::NESTED_ATTRIBUTE;

/// A segment document ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Its segment id, as X-Ray names it in UnprocessedTraceSegments.
    pub id: String,
    pub json: String,
}

#[derive(Debug, Default, PartialEq)]
pub struct BuildStats {
    pub trimmed: u64,
    pub too_large: u64,
    pub annotations: AnnotationStats,
}

fn trimmed(mut doc: Map<String, Json>, stats: &mut BuildStats) -> Option<String> {
    let mut json = Json::Object(doc.clone()).to_string();
    if json.len() <= MAX_DOCUMENT_BYTES {
        return Some(json);
    }
    stats.trimmed += 1;
    let steps: [fn(&mut Map<String, Json>); 4] = [
        |d| {
            d.remove("metadata");
        },
        |d| {
            if let Some(Json::Object(sql)) = d.get_mut("sql") {
                sql.remove("sanitized_query");
            }
        },
        |d| {
            d.remove("cause");
        },
        |d| {
            d.remove("annotations");
        },
    ];
    for step in steps {
        step(&mut doc);
        json = Json::Object(doc.clone()).to_string();
        if json.len() <= MAX_DOCUMENT_BYTES {
            return Some(json);
        }
    }
    stats.too_large += 1;
    None
}

/// The documents of `spans`, in order, in requests of at most 50.
pub fn build(spans: &[Span], indexing: &Indexing, stats: &mut BuildStats) -> Vec<Vec<Document>> {
    let mut docs = Vec::with_capacity(spans.len());
    for span in spans {
        if find_attribute(&span.attributes, NESTED_ATTRIBUTE).is_some() {
            continue;
        }
        if let Some(raw) =
            find_attribute(&span.attributes, RAW_SEGMENT_ATTRIBUTE).and_then(|v| v.as_str())
        {
            if raw.len() > MAX_DOCUMENT_BYTES {
                stats.too_large += 1;
                continue;
            }
            docs.push(Document {
                id: segment_id(&span.span_id),
                json: raw.to_string(),
            });
            continue;
        }
        let doc = document(span, indexing, &mut stats.annotations);
        if let Some(json) = trimmed(doc, stats) {
            docs.push(Document {
                id: segment_id(&span.span_id),
                json,
            });
        }
    }
    let mut requests = Vec::with_capacity(docs.len().div_ceil(MAX_DOCUMENTS_PER_REQUEST));
    let mut docs = docs.into_iter().peekable();
    while docs.peek().is_some() {
        requests.push(docs.by_ref().take(MAX_DOCUMENTS_PER_REQUEST).collect());
    }
    requests
}
