//! docs/openapi.yaml documents exactly the routes the gateway serves (`settlegate::http::routes::Route::ALL`): a route served but
//! undocumented, or documented but not served, fails this test.

use std::collections::BTreeSet;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

/// The HTTP methods an OpenAPI path item may hold as operations (OpenAPI 3.1 "Path Item Object").
const OPERATION_KEYS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Path-item keys that are not operations.
const OTHER_PATH_ITEM_KEYS: [&str; 5] = ["$ref", "summary", "description", "servers", "parameters"];

fn documented_operations() -> BTreeSet<(String, String)> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.yaml");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
    assert_eq!(docs.len(), 1, "{}: expected one YAML document", file.display());
    let doc = &docs[0];
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "not an OpenAPI 3 document");
    let paths = doc["paths"].as_hash().expect("openapi.yaml has a `paths` map");
    let mut ops = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().unwrap_or_else(|| panic!("path key {path:?} is not a string"));
        assert!(path.starts_with('/'), "path {path:?} must start with /");
        let item = item.as_hash().unwrap_or_else(|| panic!("path {path}: not a map"));
        for (key, op) in item {
            let key = key.as_str().unwrap_or_else(|| panic!("path {path}: non-string key {key:?}"));
            if OPERATION_KEYS.contains(&key) {
                assert!(matches!(op, Yaml::Hash(_)), "{key} {path}: the operation is not a map");
                let fresh = ops.insert((key.to_ascii_uppercase(), path.to_string()));
                assert!(fresh, "{key} {path} documented twice");
            } else {
                assert!(
                    OTHER_PATH_ITEM_KEYS.contains(&key) || key.starts_with("x-"),
                    "path {path}: unexpected key {key:?} (a misspelt method?)"
                );
            }
        }
    }
    ops
}

#[test]
fn openapi_documents_exactly_the_served_routes() {
    let documented = documented_operations();
    let served: BTreeSet<(String, String)> =
        settlegate::http::routes::Route::ALL.iter().map(|r| (r.method().to_string(), r.path().to_string())).collect();
    assert_eq!(served.len(), settlegate::http::routes::Route::ALL.len(), "ROUTES lists an operation twice");

    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "docs/openapi.yaml and settlegate::http::routes::Route::ALL differ:\n  served but not documented: {undocumented:?}\n  \
         documented but not served: {not_served:?}"
    );
    eprintln!("openapi: {} operations, all served and documented", documented.len());
}

/// Every `{param}` of a documented path is declared as a path parameter (on the path item or the operation).
#[test]
fn openapi_path_parameters_are_declared() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.yaml");
    let docs = YamlLoader::load_from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let doc = &docs[0];
    let resolve = |p: &Yaml| -> Yaml {
        match p["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/parameters/")) {
            Some(name) => doc["components"]["parameters"][name].clone(),
            None => p.clone(),
        }
    };
    for (path, item) in doc["paths"].as_hash().unwrap() {
        let path = path.as_str().unwrap();
        let wanted: Vec<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        if wanted.is_empty() {
            continue;
        }
        let declared_on = |node: &Yaml| -> BTreeSet<String> {
            node["parameters"]
                .as_vec()
                .map(|v| {
                    v.iter()
                        .map(resolve)
                        .filter(|p| p["in"].as_str() == Some("path"))
                        .filter_map(|p| p["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let common = declared_on(item);
        for (key, op) in item.as_hash().unwrap() {
            let key = key.as_str().unwrap();
            if !OPERATION_KEYS.contains(&key) {
                continue;
            }
            let mut declared = common.clone();
            declared.extend(declared_on(op));
            for name in &wanted {
                assert!(declared.contains(*name), "{key} {path}: path parameter {name} is not declared");
            }
        }
    }
}
