//! API tokens (administrators only).

use axum::extract::State as S;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{Token, TokenCreate, TokenCreated};

use super::{ReadErrors, State, WriteErrors};
use crate::http::auth::Principal;
use crate::http::error::ApiResult;
use crate::http::extract::{Json, Path};
use crate::http::policy::guard;
use crate::http::respond::{JsonCreated, JsonOk};
use crate::service::tokens;

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ManageTokens, routes!(list_tokens)))
        .routes(guard(Permission::ManageTokens, routes!(create_token)))
        .routes(guard(Permission::ManageTokens, routes!(revoke_token)))
        .routes(guard(Permission::ReadTerminology, routes!(own_token)))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses((status = 200, body = Vec<Token>), ReadErrors))]
pub async fn list_tokens(S(state): State) -> ApiResult<JsonOk<Vec<Token>>> {
    Ok(JsonOk(tokens::list(&state.db).await?))
}

/// Creates a token; the response is the only time the token is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenCreate, responses((status = 201, body = TokenCreated), WriteErrors))]
pub async fn create_token(S(state): State, Json(input): Json<TokenCreate>) -> ApiResult<JsonCreated<TokenCreated>> {
    Ok(JsonCreated(tokens::create(&state.db, &input).await?))
}

/// Revokes a token: refused at once by this server, by other servers sharing the database within their
/// token cache time (`auth.token_cache_secs`, 10 s by default).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path)), responses((status = 200, body = Token), WriteErrors))]
pub async fn revoke_token(S(state): State, Path(id): Path<i64>) -> ApiResult<JsonOk<Token>> {
    let token = tokens::revoke(&state.db, id).await?;
    state.tokens.forget(id);
    Ok(JsonOk(token))
}

/// The caller's own token (name, role, expiry): how a service in front of the registry checks what a caller
/// may do. Every valid token may ask.
#[utoipa::path(get, path = "/api/v1/tokens/self", tag = "tokens", responses((status = 200, body = Token), ReadErrors))]
pub async fn own_token(S(state): State, principal: Principal) -> ApiResult<JsonOk<Token>> {
    Ok(JsonOk(tokens::get(&state.db, principal.token_id).await?))
}
