//! OTLP traces to and from spans, with their events and links.

use super::*;

fn span_kind_from_proto(k: i32) -> SpanKind {
    use pt::span::SpanKind as K;
    match K::try_from(k) {
        Ok(K::Internal) => SpanKind::Internal,
        Ok(K::Server) => SpanKind::Server,
        Ok(K::Client) => SpanKind::Client,
        Ok(K::Producer) => SpanKind::Producer,
        Ok(K::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

fn span_kind_to_proto(k: SpanKind) -> i32 {
    use pt::span::SpanKind as K;
    (match k {
        SpanKind::Unspecified => K::Unspecified,
        SpanKind::Internal => K::Internal,
        SpanKind::Server => K::Server,
        SpanKind::Client => K::Client,
        SpanKind::Producer => K::Producer,
        SpanKind::Consumer => K::Consumer,
    }) as i32
}

fn status_code_from_proto(c: i32) -> StatusCode {
    use pt::status::StatusCode as C;
    match C::try_from(c) {
        Ok(C::Ok) => StatusCode::Ok,
        Ok(C::Error) => StatusCode::Error,
        _ => StatusCode::Unset,
    }
}

fn status_code_to_proto(c: StatusCode) -> i32 {
    use pt::status::StatusCode as C;
    (match c {
        StatusCode::Unset => C::Unset,
        StatusCode::Ok => C::Ok,
        StatusCode::Error => C::Error,
    }) as i32
}

fn span_from_proto(origin: &Arc<Origin>, s: pt::Span) -> Result<Span, ()> {
    Ok(Span {
        origin: origin.clone(),
        trace_id: required_id(&s.trace_id)?,
        span_id: required_id(&s.span_id)?,
        trace_state: s.trace_state,
        parent_span_id: optional_id(&s.parent_span_id)?,
        flags: s.flags,
        name: s.name,
        kind: span_kind_from_proto(s.kind),
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: attributes_from_proto(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .into_iter()
            .map(|e| SpanEvent {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: attributes_from_proto(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .into_iter()
            .map(|l| {
                Ok(SpanLink {
                    trace_id: required_id(&l.trace_id)?,
                    span_id: required_id(&l.span_id)?,
                    trace_state: l.trace_state,
                    attributes: attributes_from_proto(l.attributes),
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                })
            })
            .collect::<Result<_, ()>>()?,
        dropped_links_count: s.dropped_links_count,
        status: s
            .status
            .map(|st| (status_code_from_proto(st.code), st.message)),
    })
}

fn span_to_proto(s: Span) -> pt::Span {
    pt::Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        trace_state: s.trace_state,
        parent_span_id: id_to_proto(s.parent_span_id),
        flags: s.flags,
        name: s.name,
        kind: span_kind_to_proto(s.kind),
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: attributes_to_proto(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .into_iter()
            .map(|e| pt::span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: attributes_to_proto(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .into_iter()
            .map(|l| pt::span::Link {
                trace_id: l.trace_id.to_vec(),
                span_id: l.span_id.to_vec(),
                trace_state: l.trace_state,
                attributes: attributes_to_proto(l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: s.dropped_links_count,
        status: s.status.map(|(code, message)| pt::Status {
            message,
            code: status_code_to_proto(code),
        }),
    }
}

/// OTLP traces to events.
pub fn spans_from_proto(req: ExportTraceServiceRequest) -> Decoded<Span> {
    let mut records = Vec::new();
    let mut rejected = 0;
    for rs in req.resource_spans {
        let resource = rs.resource;
        for ss in rs.scope_spans {
            let origin = origin_from_proto(
                resource.clone(),
                rs.schema_url.clone(),
                ss.scope,
                ss.schema_url,
            );
            for s in ss.spans {
                match span_from_proto(&origin, s) {
                    Ok(span) => records.push(span),
                    Err(()) => rejected += 1,
                }
            }
        }
    }
    Decoded { records, rejected }
}

/// Events to OTLP traces.
pub fn spans_to_proto(spans: Vec<Span>) -> ExportTraceServiceRequest {
    let groups = group_by_origin(spans, |s| &s.origin);
    let resource_spans = nest(
        groups,
        |scope, records: Vec<Span>, schema_url| pt::ScopeSpans {
            scope,
            spans: records.into_iter().map(span_to_proto).collect(),
            schema_url,
        },
        |resource, scope_spans, schema_url| pt::ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        },
    );
    ExportTraceServiceRequest { resource_spans }
}
