//! `GET /api/openapi.json`: the API's contract as an OpenAPI 3.1 document.

use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

fn op(summary: &str, auth: bool, body: Option<Value>, ok: (&str, Value), errors: &[&str]) -> Value {
    let mut responses = Map::new();
    responses.insert(ok.0.to_string(), json!({"description": "success", "content": {"application/json": {"schema": ok.1}}}));
    for code in errors {
        responses.insert(code.to_string(), json!({"$ref": "#/components/responses/Error"}));
    }
    let mut o = json!({"summary": summary, "responses": responses});
    if let Some(schema) = body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    if !auth {
        o["security"] = json!([]);
    }
    o
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": props, "required": required})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

fn query_param(name: &str, required: bool) -> Value {
    json!({"name": name, "in": "query", "required": required, "schema": {"type": "string"}})
}

pub fn spec() -> Value {
    let s = |t: &str| json!({"type": t});
    let credentials = obj(json!({"email": s("string"), "password": s("string")}), &["email", "password"]);
    let sign_up = obj(
        json!({"email": s("string"), "password": {"type": "string", "minLength": 8},
               "plan": {"type": "string", "enum": ["basic", "standard", "premium"]}}),
        &["email", "password", "plan"],
    );
    let position = obj(json!({"position_s": {"type": "number", "minimum": 0}}), &[]);
    let with = |mut o: Value, params: Vec<Value>| {
        o["parameters"] = json!(params);
        o
    };
    let title_input = obj(
        json!({"kind": {"enum": ["movie", "series", "episode"]}, "name": s("string"), "synopsis": s("string"),
               "year": s("integer"), "maturity": s("string"), "genres": {"type": "array", "items": s("string")},
               "duration_s": s("number"), "parent_id": s("string"), "season_number": s("integer"),
               "episode_number": s("integer")}),
        &["kind", "name", "year", "maturity"],
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Reel control plane", "version": "1",
                 "description": "Accounts, profiles, catalog, home page and playback. Every error is {\"error\": {\"code\", \"message\"}}."},
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": {
            "/healthz": {"get": op("Liveness and database reachability", false, None, ("200", s("object")), &["503"])},
            "/api/v1/accounts": {"post": op("Sign up (also signs in)", false, Some(sign_up), ("201", r("SignedIn")), &["400", "409", "415", "422"])},
            "/api/v1/sessions": {"post": op("Sign in; rate limited per email and client", false, Some(credentials), ("200", r("SignedIn")), &["401", "422", "429"])},
            "/api/v1/sessions/current": {"delete": op("Sign out", true, None, ("204", s("null")), &["401"])},
            "/api/v1/me": {"get": op("The signed-in account and its plan", true, None, ("200", s("object")), &["401"])},
            "/api/v1/profiles": {
                "get": op("List profiles", true, None, ("200", obj(json!({"profiles": {"type": "array", "items": r("Profile")}}), &["profiles"])), &["401"]),
                "post": op("Add a profile (at most 5)", true, Some(obj(json!({"name": s("string"), "kids": s("boolean")}), &["name"])), ("201", r("Profile")), &["401", "409", "422"])
            },
            "/api/v1/profiles/{id}": {
                "patch": with(op("Rename a profile or change its kids flag", true, Some(obj(json!({"name": s("string"), "kids": s("boolean")}), &[])), ("200", r("Profile")), &["401", "404", "422"]), vec![path_param("id")]),
                "delete": with(op("Delete a profile", true, None, ("204", s("null")), &["401", "404", "409"]), vec![path_param("id")])
            },
            "/api/v1/home": {"get": with(op("Home page rows for a profile", true, None, ("200", r("Home")), &["400", "401", "404"]), vec![query_param("profile", true)])},
            "/api/v1/titles/{id}": {"get": with(op("A title page", true, None, ("200", r("Title")), &["401", "403", "404"]), vec![path_param("id"), query_param("profile", false)])},
            "/api/v1/titles/{id}/artwork/{file}": {"get": with(op("Artwork variant as SVG (public)", false, None, ("200", s("string")), &["404"]), vec![path_param("id"), path_param("file")])},
            "/api/v1/search": {"get": with(op("Search titles by name and genre", true, None, ("200", obj(json!({"results": {"type": "array", "items": r("Card")}}), &["results"])), &["401", "422"]), vec![query_param("q", false), query_param("genre", false), query_param("profile", false)])},
            "/api/v1/genres": {"get": op("All genres", true, None, ("200", s("object")), &["401"])},
            "/api/v1/playback": {"post": op("Start playback: checks profile, maturity, plan streams and quality", true,
                Some(obj(json!({"profile_id": s("string"), "title_id": s("string")}), &["profile_id", "title_id"])),
                ("201", r("Playback")), &["401", "403", "404", "409", "422"])},
            "/api/v1/playback/{id}/heartbeat": {"post": with(op("Report position; keeps the stream alive", true, Some(position.clone()), ("200", s("object")), &["401", "404", "409", "410", "422"]), vec![path_param("id")])},
            "/api/v1/playback/{id}/stop": {"post": with(op("Stop a stream, freeing its slot", true, Some(position), ("200", s("object")), &["401", "404", "422"]), vec![path_param("id")])},
            "/api/v1/admin/titles": {"post": op("Add a title (admin)", true, Some(title_input), ("201", r("Card")), &["401", "403", "422"])},
            "/api/v1/admin/titles/{id}": {
                "patch": with(op("Edit a title (admin)", true, Some(s("object")), ("200", r("Card")), &["401", "403", "404", "422"]), vec![path_param("id")]),
                "delete": with(op("Remove a title (admin)", true, None, ("204", s("null")), &["401", "403", "404"]), vec![path_param("id")])
            },
            "/api/v1/admin/genres": {"post": op("Add a genre (admin)", true, Some(obj(json!({"name": s("string")}), &["name"])), ("201", s("object")), &["401", "403", "422"])},
            "/media/{token}/{title}/master.m3u8": {"get": with(op("HLS master playlist for a playback token", false, None, ("200", s("string")), &["403", "404"]), vec![path_param("token"), path_param("title")])}
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "reel_session"}
            },
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": r("Error")}}}},
            "schemas": {
                "Error": obj(json!({"error": obj(json!({"code": s("string"), "message": s("string")}), &["code", "message"])}), &["error"]),
                "SignedIn": {"type": "object", "properties": {"token": s("string"), "account": s("object")}, "required": ["token", "account"]},
                "Profile": {"type": "object", "properties": {"id": s("string"), "name": s("string"), "kids": s("boolean"), "avatar_color": s("string")}, "required": ["id", "name", "kids"]},
                "Card": {"type": "object", "properties": {"id": s("string"), "name": s("string"), "kind": s("string"), "artwork": s("string"),
                         "year": s("integer"), "maturity": s("string"), "genres": {"type": "array", "items": s("string")}, "duration_s": s("number")},
                         "required": ["id", "name", "artwork"]},
                "Home": {"type": "object", "properties": {"rows": {"type": "array", "items": {"type": "object",
                         "properties": {"id": s("string"), "title": s("string"), "items": {"type": "array", "items": r("Card")}}, "required": ["title", "items"]}}}, "required": ["rows"]},
                "Title": {"type": "object", "properties": {"id": s("string"), "name": s("string"), "synopsis": s("string"), "seasons": s("array"), "artwork": s("array")}, "required": ["id", "name"]},
                "Playback": {"type": "object", "properties": {"id": s("string"), "token": s("string"), "expires_at": s("integer"),
                             "manifests": {"type": "object", "properties": {"hls": s("string"), "mpd": s("string")}}, "urls": s("array"), "start_position_s": s("number")},
                             "required": ["id", "token", "manifests", "urls"]}
            }
        }
    })
}

pub async fn document() -> impl IntoResponse {
    axum::Json(spec())
}
