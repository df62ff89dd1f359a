//! Sign-up, sign-in, sign-out and profiles.

use crate::auth::{self, Caller, ClientAddr};
use crate::error::{check_id, ApiError, ApiResult, Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use reel_domain::{Plan, Role};
use reel_store::{NewAccount, StoreError};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/accounts", post(sign_up))
        .route("/sessions", post(sign_in))
        .route("/sessions/current", delete(sign_out))
        .route("/me", get(me))
        .route("/profiles", get(list_profiles).post(create_profile))
        .route("/profiles/{id}", patch(update_profile).delete(delete_profile))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUp {
    email: String,
    password: String,
    plan: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    email: String,
    password: String,
}

fn normalize_email(raw: &str) -> ApiResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(ApiError::validation("email must look like name@example.com"))
    }
}

fn check_password(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if n < 8 {
        return Err(ApiError::validation("password must be at least 8 characters"));
    }
    if n > 256 {
        return Err(ApiError::validation("password must be at most 256 characters"));
    }
    Ok(())
}

pub(crate) fn check_profile_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > 32 || name.chars().any(char::is_control) {
        return Err(ApiError::validation("a profile name is 1 to 32 printable characters"));
    }
    Ok(name.to_string())
}

/// The first profile's name: the email's local part, capitalised.
fn first_profile_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or("Me");
    let mut name: String = local.chars().filter(|c| c.is_alphanumeric()).take(32).collect();
    if name.is_empty() {
        name = "Me".into();
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(f) => f.to_uppercase().chain(chars).collect(),
        None => name,
    }
}

fn plan_json(plan: Plan) -> serde_json::Value {
    json!({"name": plan.as_str(), "display_name": plan.display_name(),
           "max_streams": plan.max_streams(), "max_height": plan.max_height()})
}

async fn start_session(state: &AppState, account_id: &str) -> ApiResult<(String, i64)> {
    let token = auth::new_session_token();
    let expires = reel_domain::now_ms() + state.config.session_ttl.as_millis() as i64;
    state.store.create_session(&auth::token_hash(&token), account_id, expires).await?;
    Ok((token, expires))
}

fn with_cookie(state: &AppState, token: &str, status: StatusCode, body: serde_json::Value) -> Response {
    let cookie = auth::session_cookie(token, state.config.session_ttl.as_secs() as i64, state.config.secure_cookies);
    (status, [(header::SET_COOKIE, cookie)], axum::Json(body)).into_response()
}

async fn sign_up(State(state): State<AppState>, Json(req): Json<SignUp>) -> ApiResult<Response> {
    let email = normalize_email(&req.email)?;
    check_password(&req.password)?;
    let plan = Plan::parse(&req.plan)
        .ok_or_else(|| ApiError::validation("plan must be one of basic, standard, premium"))?;
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|_| ApiError::internal())??;
    let created = state
        .store
        .create_account(NewAccount {
            email: &email,
            password_hash: &hash,
            plan,
            role: Role::Viewer,
            first_profile: &first_profile_name(&email),
        })
        .await;
    let (account, profile) = match created {
        Ok(pair) => pair,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "email_taken", "an account with this email already exists; sign in instead"))
        }
        Err(e) => return Err(e.into()),
    };
    let (token, expires) = start_session(&state, &account.id).await?;
    tracing::info!(message = "account created", account = %account.id, plan = plan.as_str());
    Ok(with_cookie(
        &state,
        &token,
        StatusCode::CREATED,
        json!({"account": account, "plan": plan_json(plan), "profiles": [profile], "token": token, "expires_at_ms": expires}),
    ))
}

async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(req): Json<SignIn>,
) -> ApiResult<Response> {
    let email = req.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 || req.password.len() > 1024 {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong email or password"));
    }
    let now = reel_domain::now_ms();
    let since = now - state.config.signin_window.as_millis() as i64;
    let by_email = format!("email:{email}");
    let by_addr = format!("addr:{}", addr.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into()));
    let max = state.config.signin_max_failures;
    if state.store.signin_failures_since(&by_email, since).await? >= max
        || state.store.signin_failures_since(&by_addr, since).await? >= max * 4
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many failed sign-ins; wait 15 minutes and try again",
        ));
    }
    let account = state.store.account_by_email(&email).await?;
    let hash = account.as_ref().map(|a| a.password_hash.clone()).unwrap_or_else(|| auth::decoy_hash().to_string());
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(|_| ApiError::internal())?;
    let Some(account) = account.filter(|_| ok) else {
        state.store.record_signin_failure(&by_email, now).await?;
        state.store.record_signin_failure(&by_addr, now).await?;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong email or password"));
    };
    state.store.clear_signin_failures(&by_email).await?;
    let (token, expires) = start_session(&state, &account.id).await?;
    Ok(with_cookie(
        &state,
        &token,
        StatusCode::OK,
        json!({"token": token, "account": account, "plan": plan_json(account.plan), "expires_at_ms": expires}),
    ))
}

async fn sign_out(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    state.store.delete_session(&caller.token_hash).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, auth::clear_cookie(state.config.secure_cookies))]).into_response())
}

async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    let stale = reel_domain::now_ms() - state.config.stream_stale_after.as_millis() as i64;
    let streams = state.store.active_streams(&caller.account.id, stale).await?;
    Ok(Json(json!({
        "account": caller.account,
        "plan": plan_json(caller.account.plan),
        "active_streams": streams.len(),
    })))
}

async fn list_profiles(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    let profiles = state.store.profiles(&caller.account.id).await?;
    Ok(Json(json!({ "profiles": profiles })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProfile {
    name: String,
    #[serde(default)]
    kids: bool,
    /// Genres the viewer picked, so a new profile starts personalized.
    #[serde(default)]
    genres: Vec<String>,
}

/// Checks picked genres against the catalog's.
async fn check_genres(state: &AppState, genres: &[String]) -> ApiResult<Vec<String>> {
    if genres.len() > 20 {
        return Err(ApiError::validation("pick at most 20 genres"));
    }
    let known: std::collections::HashSet<String> = state.store.genres().await?.into_iter().map(|g| g.slug).collect();
    let mut out = Vec::new();
    for g in genres {
        if !known.contains(g) {
            return Err(ApiError::validation(format!("unknown genre {g:?}; see GET /api/v1/genres")));
        }
        if !out.contains(g) {
            out.push(g.clone());
        }
    }
    Ok(out)
}

/// A profile as the API shows it: with the genres it picked.
async fn profile_json(state: &AppState, p: reel_store::Profile) -> ApiResult<serde_json::Value> {
    let genres = state.store.profile_genres(&p.id).await?;
    let mut v = serde_json::to_value(p).map_err(|_| ApiError::internal())?;
    v["genres"] = json!(genres);
    Ok(v)
}

async fn create_profile(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<NewProfile>,
) -> ApiResult<Response> {
    let name = check_profile_name(&req.name)?;
    let genres = check_genres(&state, &req.genres).await?;
    match state.store.create_profile(&caller.account.id, &name, req.kids).await {
        Ok(p) => {
            state.store.set_profile_genres(&p.id, &genres).await?;
            Ok((StatusCode::CREATED, axum::Json(profile_json(&state, p).await?)).into_response())
        }
        Err(StoreError::Limit(_)) => Err(ApiError::new(StatusCode::CONFLICT, "profile_limit", "an account can have at most 5 profiles")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilePatch {
    name: Option<String>,
    kids: Option<bool>,
    genres: Option<Vec<String>>,
}

async fn update_profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<ProfilePatch>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id(&id, "profile")?;
    let current = state.store.profile(&caller.account.id, &id).await?.ok_or_else(|| ApiError::not_found("profile"))?;
    if let Some(genres) = &req.genres {
        let genres = check_genres(&state, genres).await?;
        state.store.set_profile_genres(&id, &genres).await?;
    }
    let name = match req.name {
        Some(n) => check_profile_name(&n)?,
        None => current.name,
    };
    let kids = req.kids.unwrap_or(current.kids);
    let p = state.store.rename_profile(&caller.account.id, &id, &name, kids).await?;
    Ok(Json(profile_json(&state, p).await?))
}

async fn delete_profile(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    check_id(&id, "profile")?;
    match state.store.delete_profile(&caller.account.id, &id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(ApiError::not_found("profile")),
        Err(StoreError::Limit(m)) => Err(ApiError::new(StatusCode::CONFLICT, "profile_limit", m)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(normalize_email(" Ana@Example.COM ").ok().as_deref(), Some("ana@example.com"));
        for bad in ["", "ana", "ana@", "@x.com", "a b@x.com", "ana@localhost", "ana@x."] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_profile_names() {
        assert_eq!(first_profile_name("ana.maria@example.com"), "Anamaria");
        assert_eq!(first_profile_name("..@x.com"), "Me");
    }
}
