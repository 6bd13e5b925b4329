//! OTLP logs to and from log events.

use super::*;

/// OTLP logs to events.
pub fn logs_from_proto(req: ExportLogsServiceRequest) -> Decoded<LogEvent> {
    let mut records = Vec::new();
    let mut rejected = 0;
    for rl in req.resource_logs {
        let resource = rl.resource;
        for sl in rl.scope_logs {
            let origin = origin_from_proto(
                resource.clone(),
                rl.schema_url.clone(),
                sl.scope,
                sl.schema_url,
            );
            records.reserve(sl.log_records.len());
            for lr in sl.log_records {
                let (Ok(trace_id), Ok(span_id)) =
                    (optional_id(&lr.trace_id), optional_id(&lr.span_id))
                else {
                    rejected += 1;
                    continue;
                };
                records.push(LogEvent {
                    origin: origin.clone(),
                    time_unix_nano: lr.time_unix_nano,
                    observed_time_unix_nano: lr.observed_time_unix_nano,
                    severity_number: lr.severity_number,
                    severity_text: lr.severity_text,
                    body: value_from_proto(lr.body),
                    attributes: attributes_from_proto(lr.attributes).into(),
                    dropped_attributes_count: lr.dropped_attributes_count,
                    flags: lr.flags,
                    trace_id,
                    span_id,
                    event_name: lr.event_name,
                });
            }
        }
    }
    Decoded { records, rejected }
}

/// Events to OTLP logs.
pub fn logs_to_proto(events: Vec<LogEvent>) -> ExportLogsServiceRequest {
    let groups = group_by_origin(events, |e| &e.origin);
    let resource_logs = nest(
        groups,
        |scope, records: Vec<LogEvent>, schema_url| pl::ScopeLogs {
            scope,
            log_records: records.into_iter().map(log_to_proto).collect(),
            schema_url,
        },
        |resource, scope_logs, schema_url| pl::ResourceLogs {
            resource,
            scope_logs,
            schema_url,
        },
    );
    ExportLogsServiceRequest { resource_logs }
}

fn log_to_proto(e: LogEvent) -> pl::LogRecord {
    pl::LogRecord {
        time_unix_nano: e.time_unix_nano,
        observed_time_unix_nano: e.observed_time_unix_nano,
        severity_number: e.severity_number,
        severity_text: e.severity_text,
        body: match e.body {
            Value::Empty => None,
            v => value_to_proto(v),
        },
        attributes: attributes_to_proto(e.attributes.into_vec()),
        dropped_attributes_count: e.dropped_attributes_count,
        flags: e.flags,
        trace_id: id_to_proto(e.trace_id),
        span_id: id_to_proto(e.span_id),
        event_name: e.event_name,
    }
}
