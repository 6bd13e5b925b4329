"""A traced application: the OpenTelemetry Python SDK makes one trace with every span field
filled in and exports it to the agent, then prints the spans as the SDK saw them (JSON lines,
the file sink's shape) for the test to compare with what the agent delivered.

usage: otel_trace_app.py TRANSPORT ENDPOINT
  grpc        the SDK's OTLP/gRPC exporter          ENDPOINT http://127.0.0.1:4317
  http        the SDK's OTLP/HTTP protobuf exporter ENDPOINT http://127.0.0.1:4318/v1/traces
  http-gzip   the same, gzip-compressed
  json        OTLP/HTTP JSON (see JsonExporter)     ENDPOINT http://127.0.0.1:4318/v1/traces
  json-gzip   the same, gzip-compressed
Exits 1 if the export did not succeed.
"""
import base64
import gzip
import json
import sys
import urllib.request

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


class JsonExporter(SpanExporter):
    """OTLP/HTTP JSON. The Python SDK has no JSON exporter, so this one encodes the SDK's own
    ExportTraceServiceRequest (the protobuf exporters' encoder) with protobuf's canonical JSON
    mapping, then turns the ids to hex as the OTLP spec's JSON encoding requires; int64 fields
    stay strings and enums integers, as the spec allows."""

    def __init__(self, endpoint, compress):
        self.endpoint, self.compress = endpoint, compress

    def export(self, spans):
        body = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
        for rs in body.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    hexify(span, "traceId", "spanId", "parentSpanId")
                    for link in span.get("links", []):
                        hexify(link, "traceId", "spanId")
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.compress:
            data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
        request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            reply = json.loads(answer.read() or b"{}")
        if answer.status != 200 or (reply.get("partialSuccess") or {}).get("rejectedSpans"):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


def hexify(obj, *keys):
    for k in keys:
        if k in obj:
            obj[k] = base64.b64decode(obj[k]).hex()


class Recorder(SpanExporter):
    """Passes spans to the real exporter and remembers whether every export succeeded."""

    def __init__(self, inner):
        self.inner, self.ok = inner, True

    def export(self, spans):
        result = self.inner.export(spans)
        self.ok = self.ok and result == SpanExportResult.SUCCESS
        return result

    def shutdown(self):
        self.inner.shutdown()


def exporter(transport, endpoint):
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, insecure=True)
    if transport.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        gz = Compression.Gzip if transport.endswith("gzip") else Compression.NoCompression
        return OTLPSpanExporter(endpoint=endpoint, compression=gz)
    return JsonExporter(endpoint, transport.endswith("gzip"))


def as_seen(span):
    """The span in the file sink's shape."""
    ctx = span.get_span_context()
    attrs = lambda a: {k: list(v) if isinstance(v, tuple) else v for k, v in (a or {}).items()}
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "trace_state": ctx.trace_state.to_header(),
        "name": span.name,
        "kind": {SpanKind.INTERNAL: "Internal", SpanKind.SERVER: "Server", SpanKind.CLIENT: "Client",
                 SpanKind.PRODUCER: "Producer", SpanKind.CONSUMER: "Consumer"}[span.kind],
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "attributes": attrs(span.attributes),
        "events": [{"time_unix_nano": e.timestamp, "name": e.name, "attributes": attrs(e.attributes)}
                   for e in span.events],
        "links": [{"trace_id": f"{l.context.trace_id:032x}", "span_id": f"{l.context.span_id:016x}",
                   "attributes": attrs(l.attributes)} for l in span.links],
        "status": {"code": {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}[span.status.status_code],
                   "message": span.status.description or ""},
        "scope": {"name": span.instrumentation_scope.name, "version": span.instrumentation_scope.version},
        "resource": attrs(span.resource.attributes),
    }


def main():
    transport, endpoint = sys.argv[1], sys.argv[2]
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "service.version": "2.4.1", "deployment.environment.name": "prod"}))
    memory, sender = InMemorySpanExporter(), Recorder(exporter(transport, endpoint))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(sender))
    tracer = provider.get_tracer("shop.checkout", "1.2.0")
    with tracer.start_as_current_span("warm cache", kind=SpanKind.INTERNAL) as earlier:
        pass
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER,
                                      attributes={"http.request.method": "POST", "http.response.status_code": 201,
                                                  "ratio": 0.25, "cached": False, "tags": ["a", "b"]}) as root:
        root.add_event("validated", {"items": 3})
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT,
                                          links=[Link(earlier.get_span_context(), {"cause": "cache"})]) as child:
            child.add_event("declined", {"code": "insufficient_funds", "amount": 12.5})
            child.set_status(Status(StatusCode.ERROR, "card declined"))
        with tracer.start_as_current_span("publish order", kind=SpanKind.PRODUCER):
            pass
    provider.shutdown()
    for span in memory.get_finished_spans():
        print(json.dumps(as_seen(span)))
    sys.exit(0 if sender.ok else 1)


main()
