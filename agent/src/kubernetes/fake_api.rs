//! A fake Kubernetes API server for tests: no real API server can run on these machines
//! (../shared/TESTING.md), so this serves the two calls the pod watch makes, the way the
//! apiserver answers them:
//! - `GET /api/v1/pods?fieldSelector=spec.nodeName=<node>&...`: a `PodList` (items without
//!   `kind`/`apiVersion`, as the apiserver sends them) with `metadata.resourceVersion`;
//! - the same with `watch=true&resourceVersion=N`: a chunked stream of newline-delimited
//!   `{"type":"ADDED|MODIFIED|DELETED","object":{...}}` events, held open.
//!
//! The field selector is applied as the apiserver applies it, and every request's selector is
//! recorded so tests can check the agent asked for its own node's pods only.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::sync::broadcast;

#[derive(Default)]
struct State {
    pods: Vec<Value>,
    nodes: Vec<Value>,
    resource_version: u64,
    selectors: Vec<String>,
}

pub struct FakeApi {
    pub port: u16,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<(String, Value)>,
}

/// A pod as the apiserver returns it.
pub fn pod(
    name: &str,
    uid: &str,
    node: &str,
    labels: Value,
    annotations: Value,
    owner: Option<(&str, &str)>,
) -> Value {
    let mut metadata = json!({
        "name": name,
        "namespace": "shop",
        "uid": uid,
        "labels": labels,
        "annotations": annotations,
    });
    if let Some((kind, owner_name)) = owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": owner_name,
            "uid": format!("{owner_name}-uid"), "controller": true, "blockOwnerDeletion": true
        }]);
    }
    json!({
        "metadata": metadata,
        "spec": { "nodeName": node, "containers": [{ "name": "app", "image": "app:1" }] },
        "status": { "phase": "Running" }
    })
}

fn node_of(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or_default()
}

/// `spec.nodeName=<node>` out of a query string's `fieldSelector`.
fn selected_node(query: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let v = kv.strip_prefix("fieldSelector=")?;
        let v = v.replace("%3D", "=").replace("%3d", "=");
        v.strip_prefix("spec.nodeName=").map(str::to_owned)
    })
}

impl FakeApi {
    pub async fn start(pods: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            pods,
            nodes: Vec::new(),
            resource_version: 100,
            selectors: Vec::new(),
        }));
        let (events, _) = broadcast::channel(64);
        let (st, ev) = (state.clone(), events.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (st, ev) = (st.clone(), ev.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (st, ev) = (st.clone(), ev.clone());
                        async move { Ok::<_, Infallible>(handle(req, &st, &ev)) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            port,
            state,
            events,
        }
    }

    /// A kubeconfig that points at this server.
    pub fn kubeconfig(&self) -> String {
        kubeconfig_for(self.port)
    }

    /// Adds or changes a pod, as a watch event.
    /// Serves `node` at `/api/v1/nodes/<its name>`.
    pub fn set_node(&self, node: Value) {
        self.state.lock().unwrap().nodes.push(node);
    }

    pub fn apply(&self, pod: Value) {
        let mut st = self.state.lock().unwrap();
        st.resource_version += 1;
        let uid = pod["metadata"]["uid"].clone();
        let kind = match st.pods.iter().position(|p| p["metadata"]["uid"] == uid) {
            Some(i) => {
                st.pods[i] = pod.clone();
                "MODIFIED"
            }
            None => {
                st.pods.push(pod.clone());
                "ADDED"
            }
        };
        let mut object = pod;
        object["metadata"]["resourceVersion"] = json!(st.resource_version.to_string());
        let _ = self.events.send((kind.to_owned(), object));
    }

    /// Deletes a pod, as a watch event.
    pub fn delete(&self, uid: &str) {
        let mut st = self.state.lock().unwrap();
        st.resource_version += 1;
        let Some(i) = st.pods.iter().position(|p| p["metadata"]["uid"] == uid) else {
            return;
        };
        let mut object = st.pods.remove(i);
        object["metadata"]["resourceVersion"] = json!(st.resource_version.to_string());
        let _ = self.events.send(("DELETED".to_owned(), object));
    }

    /// The `fieldSelector` of every request so far.
    pub fn selectors(&self) -> Vec<String> {
        self.state.lock().unwrap().selectors.clone()
    }
}

pub fn kubeconfig_for(port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: test-token\n"
    )
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn handle(
    req: Request<Incoming>,
    state: &Mutex<State>,
    events: &broadcast::Sender<(String, Value)>,
) -> Response<Body> {
    if let Some(name) = req.uri().path().strip_prefix("/api/v1/nodes/") {
        let found = state
            .lock()
            .unwrap()
            .nodes
            .iter()
            .find(|n| n["metadata"]["name"] == name)
            .cloned();
        let (status, body) = match found {
            Some(node) => (200, node),
            None => (
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("nodes \"{name}\" not found")}),
            ),
        };
        return Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())).boxed_unsync())
            .unwrap();
    }
    let query = req.uri().query().unwrap_or_default().to_owned();
    let node = selected_node(&query);
    state.lock().unwrap().selectors.push(
        node.clone()
            .map_or_else(String::new, |n| format!("spec.nodeName={n}")),
    );
    if req.uri().path() != "/api/v1/pods" {
        return Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(b"{}")).boxed_unsync())
            .unwrap();
    }
    let matches = move |p: &Value| node.as_deref().is_none_or(|n| node_of(p) == n);
    if query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1")
    {
        let rx = events.subscribe();
        let stream = futures_util::stream::unfold(rx, move |mut rx| {
            let matches = matches.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok((kind, object)) if matches(&object) => {
                            let mut line =
                                serde_json::to_vec(&json!({"type": kind, "object": object}))
                                    .unwrap();
                            line.push(b'\n');
                            return Some((Ok(Frame::data(Bytes::from(line))), rx));
                        }
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
            }
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(BodyExt::boxed_unsync(StreamBody::new(stream.boxed())))
            .unwrap();
    }
    let st = state.lock().unwrap();
    let items: Vec<Value> = st.pods.iter().filter(|p| matches(p)).cloned().collect();
    let list = json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": { "resourceVersion": st.resource_version.to_string() },
        "items": items,
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&list).unwrap())).boxed_unsync())
        .unwrap()
}
