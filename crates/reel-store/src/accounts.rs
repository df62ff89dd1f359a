//! Accounts, sessions, sign-in failures and profiles.

use crate::{conflict, get, Result, Store, StoreError};
use reel_domain::{new_id, Plan, Role};
use serde::Serialize;
use sqlx::any::AnyRow;

/// Profiles one account may hold.
pub const MAX_PROFILES: i64 = 5;

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: String,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    pub plan: Plan,
    pub role: Role,
    pub created_ms: i64,
}

pub struct NewAccount<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub plan: Plan,
    pub role: Role,
    /// Name of the profile made with the account.
    pub first_profile: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub id: String,
    #[serde(skip)]
    pub account_id: String,
    pub name: String,
    pub kids: bool,
    pub avatar_color: String,
}

const AVATAR_COLORS: [&str; 6] = ["#e50914", "#2f80ed", "#f2c94c", "#27ae60", "#9b51e0", "#f2994a"];

fn account_from(row: &AnyRow) -> Result<Account> {
    let plan: String = get(row, "plan")?;
    let role: String = get(row, "role")?;
    Ok(Account {
        id: get(row, "id")?,
        email: get(row, "email")?,
        password_hash: get(row, "password_hash")?,
        plan: Plan::parse(&plan).ok_or_else(|| StoreError::Corrupt(format!("plan {plan:?}")))?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        created_ms: get(row, "created_ms")?,
    })
}

fn profile_from(row: &AnyRow) -> Result<Profile> {
    Ok(Profile {
        id: get(row, "id")?,
        account_id: get(row, "account_id")?,
        name: get(row, "name")?,
        kids: get::<i64>(row, "kids")? != 0,
        avatar_color: get(row, "avatar_color")?,
    })
}

const ACCOUNT_COLS: &str = "id, email, password_hash, plan, role, created_ms";
const PROFILE_COLS: &str = "id, account_id, name, kids, avatar_color";

impl Store {
    /// Creates an account and its first profile in one transaction.
    pub async fn create_account(&self, new: NewAccount<'_>) -> Result<(Account, Profile)> {
        let now = reel_domain::now_ms();
        let account = Account {
            id: new_id("acc"),
            email: new.email.to_string(),
            password_hash: new.password_hash.to_string(),
            plan: new.plan,
            role: new.role,
            created_ms: now,
        };
        let profile = Profile {
            id: new_id("prf"),
            account_id: account.id.clone(),
            name: new.first_profile.to_string(),
            kids: false,
            avatar_color: AVATAR_COLORS[0].to_string(),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (id, email, password_hash, plan, role, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&account.id)
        .bind(&account.email)
        .bind(&account.password_hash)
        .bind(account.plan.as_str())
        .bind(account.role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(conflict("an account with this email"))?;
        insert_profile(&mut tx, &profile, now).await?;
        tx.commit().await?;
        Ok((account, profile))
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE email = $1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from).transpose()
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from).transpose()
    }

    pub async fn set_role(&self, email: &str, role: Role) -> Result<Account> {
        let done = sqlx::query("UPDATE accounts SET role = $1 WHERE email = $2")
            .bind(role.as_str())
            .bind(email)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.account_by_email(email).await?.ok_or(StoreError::NotFound)
    }

    pub async fn set_plan(&self, account_id: &str, plan: Plan) -> Result<()> {
        sqlx::query("UPDATE accounts SET plan = $1 WHERE id = $2")
            .bind(plan.as_str())
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a session by the hash of its token (the token itself is never stored).
    pub async fn create_session(&self, token_hash: &str, account_id: &str, expires_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, account_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(reel_domain::now_ms())
        .bind(expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account behind a live session, if any.
    pub async fn session_account(&self, token_hash: &str, now_ms: i64) -> Result<Option<Account>> {
        let cols = ACCOUNT_COLS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let row = sqlx::query(&format!(
            "SELECT {cols} FROM sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE s.token_hash = $1 AND s.expires_ms > $2"
        ))
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from).transpose()
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed sign-in for `subject` (an email, or a client address).
    pub async fn record_signin_failure(&self, subject: &str, now_ms: i64) -> Result<()> {
        sqlx::query("INSERT INTO signin_failures (subject, at_ms) VALUES ($1, $2)")
            .bind(subject)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Failed sign-ins for `subject` since `since_ms`; older rows are pruned.
    pub async fn signin_failures_since(&self, subject: &str, since_ms: i64) -> Result<i64> {
        sqlx::query("DELETE FROM signin_failures WHERE subject = $1 AND at_ms < $2")
            .bind(subject)
            .bind(since_ms)
            .execute(&self.pool)
            .await?;
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM signin_failures WHERE subject = $1 AND at_ms >= $2")
                .bind(subject)
                .bind(since_ms)
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }

    pub async fn clear_signin_failures(&self, subject: &str) -> Result<()> {
        sqlx::query("DELETE FROM signin_failures WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn profiles(&self, account_id: &str) -> Result<Vec<Profile>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROFILE_COLS} FROM profiles WHERE account_id = $1 ORDER BY created_ms, id"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(profile_from).collect()
    }

    /// A profile, only if it belongs to `account_id`.
    pub async fn profile(&self, account_id: &str, profile_id: &str) -> Result<Option<Profile>> {
        let row = sqlx::query(&format!(
            "SELECT {PROFILE_COLS} FROM profiles WHERE id = $1 AND account_id = $2"
        ))
        .bind(profile_id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(profile_from).transpose()
    }

    /// Adds a profile unless the account already has [`MAX_PROFILES`].
    pub async fn create_profile(&self, account_id: &str, name: &str, kids: bool) -> Result<Profile> {
        let mut tx = self.pool.begin().await?;
        // Taking the account row first serialises concurrent adds.
        let gate = sqlx::query("UPDATE accounts SET stream_gate = stream_gate WHERE id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        if gate.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM profiles WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
        if n >= MAX_PROFILES {
            return Err(StoreError::Limit("an account holds at most 5 profiles"));
        }
        let profile = Profile {
            id: new_id("prf"),
            account_id: account_id.to_string(),
            name: name.to_string(),
            kids,
            avatar_color: AVATAR_COLORS[(n as usize) % AVATAR_COLORS.len()].to_string(),
        };
        insert_profile(&mut tx, &profile, reel_domain::now_ms()).await?;
        tx.commit().await?;
        Ok(profile)
    }

    pub async fn rename_profile(&self, account_id: &str, profile_id: &str, name: &str, kids: bool) -> Result<Profile> {
        let done = sqlx::query("UPDATE profiles SET name = $1, kids = $2 WHERE id = $3 AND account_id = $4")
            .bind(name)
            .bind(kids as i64)
            .bind(profile_id)
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.profile(account_id, profile_id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a profile of `account_id`; an account keeps at least one.
    pub async fn delete_profile(&self, account_id: &str, profile_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE accounts SET stream_gate = stream_gate WHERE id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM profiles WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM profiles WHERE id = $1 AND account_id = $2")
            .bind(profile_id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if n <= 1 {
            return Err(StoreError::Limit("an account keeps at least one profile"));
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_profile(tx: &mut sqlx::Transaction<'_, sqlx::Any>, p: &Profile, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO profiles (id, account_id, name, kids, avatar_color, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&p.id)
    .bind(&p.account_id)
    .bind(&p.name)
    .bind(p.kids as i64)
    .bind(&p.avatar_color)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
