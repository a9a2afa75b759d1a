//! The OpenAPI 3 document of the API, generated from the route table.

use crate::routes::{Body, ROUTES, Route};
use serde_json::{Map, Value, json};

/// The path parameters of a route, in order (`{name}` segments).
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

fn parameters(route: &Route) -> Vec<Value> {
    let path = path_params(route.path).map(
        |name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
    );
    let query = route.query.iter().map(|(name, description)| {
        json!({
            "name": name,
            "in": "query",
            "required": false,
            "description": description,
            "schema": {"type": "string"},
        })
    });
    path.chain(query).collect()
}

fn request_body(body: Body) -> Option<Value> {
    let text = json!({"schema": {"type": "string"}});
    let object = json!({"schema": {"type": "object"}});
    let content = match body {
        Body::None => return None,
        Body::Yaml => json!({"application/x-yaml": text}),
        Body::Json => json!({"application/json": object}),
        Body::Inputs => json!({
            "multipart/form-data": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}},
            "application/json": object,
        }),
        Body::Any => json!({"application/json": object, "text/plain": text}),
    };
    Some(json!({"required": false, "content": content}))
}

fn operation(route: &Route) -> Value {
    let error = json!({"$ref": "#/components/responses/Error"});
    let mut responses = Map::new();
    let ok = if route.ok == 204 || route.ok == 202 {
        json!({"description": "Done"})
    } else {
        json!({"description": "OK", "content": {"application/json": {"schema": {}}}})
    };
    responses.insert(route.ok.to_string(), ok);
    let mut statuses = vec!["400", "404", "422"];
    if matches!(route.body, Body::Json | Body::Yaml | Body::Inputs) {
        // A body over the route's limit, or a secret value over `secret.max-size`.
        statuses.push("413");
    }
    if !route.access.is_public() {
        // 429: failed credentials, past the limit.
        statuses.extend(["401", "403", "429"]);
    }
    for status in statuses {
        responses.insert(status.to_owned(), error.clone());
    }
    let id: String = format!("{}{}", route.method, route.path)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    let mut op = json!({
        "operationId": id,
        "summary": route.summary,
        "parameters": parameters(route),
        "responses": responses,
    });
    if let Some(body) = request_body(route.body) {
        op["requestBody"] = body;
    }
    if route.access.is_public() {
        op["security"] = json!([]);
    }
    op
}

/// The document: every route of the table.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        item[route.method] = operation(route);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "kestrel",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Kestra-compatible REST API of kestrel (tenant main).",
        },
        "paths": paths,
        "security": [{"basic": []}, {"bearer": []}],
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"message": {"type": "string"}},
                        "required": ["message"],
                    }}},
                },
            },
        },
    })
}

/// The REST API reference in Markdown (`docs/api.md`): every route of the table with who may
/// call it, its query parameters, its body and its success status.
pub fn api_reference() -> String {
    let mut text = String::from(
        "# REST API reference\n\n\
         Generated from the server's route table (`kestrel api-reference`); \
         `crates/kestrel/tests/reference.rs` keeps it current. The same table gives the \
         OpenAPI document at `/api/openapi.json`.\n\n\
         Kestra's API under `/api/v1/main/` (tenant `main`). Users authenticate with `Basic` \
         (name and password), tokens with `Bearer`; `kestrel users add` and `kestrel tokens \
         create` give them their namespaces (`--namespace`, default every one) and their \
         secret access (`--secrets read|write|none`). Errors answer `{\"message\": ...}` with \
         401 (no or wrong credentials), 403 (outside the caller's namespaces or secret \
         access), 404, 409, 413 (a body or secret value over its limit), 422 (invalid input) \
         or 429 (too many failed sign-ins). No answer ever holds a secret value.\n\n\
         | method | path | who may call it | what it does | success |\n\
         |---|---|---|---|---|\n",
    );
    for route in ROUTES {
        let mut what = route.summary.replace('|', "\\|");
        if !route.query.is_empty() {
            let query: Vec<String> = route
                .query
                .iter()
                .map(|(name, about)| format!("`{name}`: {about}"))
                .collect();
            what.push_str(&format!(". Query: {}", query.join("; ")));
        }
        if let Some(body) = body_described(route.body) {
            what.push_str(&format!(". Body: {body}"));
        }
        text.push_str(&format!(
            "| {} | `{}` | {} | {what} | {} |\n",
            route.method.to_uppercase(),
            route.path,
            route.access.described(),
            route.ok
        ));
    }
    text
}

/// The route table as the API explorer (`/api`) shows it.
pub(crate) fn explorer_rows() -> Vec<Value> {
    ROUTES
        .iter()
        .map(|route| {
            let query: Vec<Value> = route
                .query
                .iter()
                .map(|(name, about)| json!({"name": name, "about": about}))
                .collect();
            json!({
                "method": route.method.to_uppercase(),
                "path": route.path,
                "access": route.access.described(),
                "summary": route.summary,
                "query": query,
                "body": body_described(route.body),
                "ok": route.ok,
            })
        })
        .collect()
}

fn body_described(body: Body) -> Option<&'static str> {
    match body {
        Body::None => None,
        Body::Yaml => Some("the flow's YAML"),
        Body::Json => Some("a JSON object"),
        Body::Inputs => Some("inputs, as multipart/form-data or a JSON object"),
        Body::Any => Some("anything (JSON, text)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_with_its_path_parameters() {
        let doc = document();
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method];
            assert!(op.is_object(), "{} {}", route.method, route.path);
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, path_params(route.path).collect::<Vec<_>>());
        }
        let webhook = &doc["paths"]["/api/v1/main/executions/webhook/{namespace}/{flowId}/{key}"];
        assert_eq!(webhook["get"]["security"], json!([]), "webhooks are public");
        let put_secret = &doc["paths"]["/api/v1/main/namespaces/{namespace}/secrets"]["put"];
        assert!(
            put_secret["responses"]["413"].is_object(),
            "a value over max-size"
        );
        let create_flow = &doc["paths"]["/api/v1/main/flows"]["post"];
        assert!(
            create_flow["responses"]["413"].is_object(),
            "a flow over the limit"
        );
    }
}
