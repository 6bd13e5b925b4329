//! Pure: records in, bulk requests out. Each record is one `create` action (its index and
//! content `_id`, see [`super::document`]) and its document, one NDJSON line each; requests are
//! cut at `max_request_bytes`. `create` writes to an index and to a data stream alike.
//!
//! Index names: placeholders filled from the record, `%Y %m %d %H` from its time (UTC), then
//! made valid as OpenSearch requires (lowercase; `\ / * ? " < > | , # :` and spaces become
//! `_`; no leading `-`, `_`, `+`; at most 255 bytes).

use sextant_pipeline::flow::event::{find_attribute, Events};

use super::document::{self, Layout};
use super::json::{push_str, SecondCache};
use crate::sinks::aws_cloudwatch_logs::template::Template;

/// The `index:` setting, parsed.
#[derive(Clone, Debug)]
pub struct IndexName {
    template: Template,
    dated: bool,
}

impl IndexName {
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(Self {
            template: Template::parse(text)?,
            dated: text.contains('%'),
        })
    }

    fn render<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a sextant_pipeline::flow::event::Value>,
        missing: &str,
        nanos: u64,
        clock: &mut SecondCache,
    ) -> String {
        let mut name = self.template.render_with(lookup, missing);
        if self.dated {
            let [y, m, d, h] = clock.date_parts(nanos / 1_000_000_000);
            name = name
                .replace("%Y", y)
                .replace("%m", m)
                .replace("%d", d)
                .replace("%H", h);
        }
        valid_index(name)
    }
}

fn valid_index(name: String) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    while out.starts_with(['-', '_', '+']) {
        out.remove(0);
    }
    if out.len() > 255 {
        let mut end = 255;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    if out.is_empty() || out == "." || out == ".." {
        out = "unknown".into();
    }
    out
}

/// One bulk request: its NDJSON lines (action and document per item) and where each item ends.
#[derive(Debug, Default)]
pub struct BulkBody {
    pub ndjson: Vec<u8>,
    pub ends: Vec<usize>,
}

impl BulkBody {
    /// Item `i`'s two lines.
    pub fn item(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.ndjson[start..self.ends[i]]
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct BuildStats {
    pub too_large: u64,
}

/// How records become documents.
#[derive(Clone, Debug)]
pub struct Settings {
    pub index: IndexName,
    pub missing: String,
    pub layout: Layout,
    pub max_request_bytes: usize,
}

/// Appends one item (action and document lines) to `body`, starting a new request in
/// `requests` when it would not fit; a document alone over the limit is left out.
struct Writer<'a> {
    settings: &'a Settings,
    requests: Vec<BulkBody>,
    current: BulkBody,
    clock: SecondCache,
}

impl Writer<'_> {
    fn item(
        &mut self,
        index: &str,
        stats: &mut BuildStats,
        document: impl FnOnce(&mut Vec<u8>, &mut SecondCache) -> document::DocId,
    ) {
        let body = &mut self.current.ndjson;
        let start = body.len();
        body.extend_from_slice(b"{\"create\":{\"_index\":");
        push_str(body, index);
        body.extend_from_slice(b",\"_id\":\"");
        let id_at = body.len();
        body.extend_from_slice(&[b'0'; 32]);
        body.extend_from_slice(b"\"}}\n");
        let id = document(body, &mut self.clock);
        body[id_at..id_at + 32].copy_from_slice(&id);
        body.push(b'\n');
        let max = self.settings.max_request_bytes;
        if body.len() - start > max {
            body.truncate(start);
            stats.too_large += 1;
            return;
        }
        if body.len() > max && start > 0 {
            let tail = body.split_off(start);
            let full = std::mem::take(&mut self.current);
            self.requests.push(full);
            self.current.ndjson = tail;
        }
        self.current.ends.push(self.current.ndjson.len());
    }
}

/// The bulk requests of a batch, in order.
pub fn build(events: &Events, settings: &Settings, stats: &mut BuildStats) -> Vec<BulkBody> {
    let mut w = Writer {
        settings,
        requests: Vec::new(),
        current: BulkBody {
            ndjson: Vec::with_capacity(settings.max_request_bytes.min(1 << 20)),
            ends: Vec::new(),
        },
        clock: SecondCache::default(),
    };
    match events {
        Events::Logs(logs) => {
            for e in logs {
                let index = settings.index.render(
                    |k| e.attribute(k),
                    &settings.missing,
                    e.effective_time_unix_nano(),
                    &mut w.clock,
                );
                w.item(&index, stats, |out, clock| {
                    document::log(out, e, settings.layout, clock)
                });
            }
        }
        Events::Spans(spans) => {
            for s in spans {
                let index = settings.index.render(
                    |k| find_attribute(&s.attributes, k).or_else(|| s.origin.resource_attribute(k)),
                    &settings.missing,
                    s.start_time_unix_nano,
                    &mut w.clock,
                );
                w.item(&index, stats, |out, clock| document::span(out, s, clock));
            }
        }
        Events::Metrics(_) => {}
    }
    let mut requests = w.requests;
    if !w.current.ends.is_empty() {
        requests.push(w.current);
    }
    requests
}
