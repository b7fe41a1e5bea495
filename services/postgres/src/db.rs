//! Connection pools and the read-only transactions every tool runs in.
//!
//! [`Database`] owns two deadpool-postgres pools over TLS ([`crate::tls`]):
//! the main one, logged in as the `DATABASE_URL` user, for the fixed tools
//! and the catalog; and, when `PG_READONLY_PASSWORD` is set, one logged in
//! as the read-only role for `run_readonly_query`. Pools connect lazily: the
//! service starts while the database is down, and each call that cannot get
//! a connection reports it as a tool error.
//!
//! [`Database::read`] runs a piece of work inside `START TRANSACTION READ
//! ONLY` with a transaction-local `statement_timeout`, always rolls back,
//! bounds the whole call by a client-side deadline as well, and throws away
//! any connection whose state it cannot vouch for.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::Transaction;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{
    config::{Limits, ReadOnlyLogin, Settings, describe_target},
    errors,
    tls::{self, TlsError},
    wire_guard::{GuardedConnect, Oversized},
};

/// A boxed future borrowing a transaction, as [`Database::read`] takes it.
pub type WorkFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 't>>;

/// Which identity a transaction runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The `DATABASE_URL` user: the fixed tools and the catalog.
    Service,
    /// The read-only role (`PG_READONLY_ROLE`): untrusted SQL.
    ReadOnlyRole,
}

/// Why the database access could not be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The TLS configuration (root certificates) is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A pool could not be built.
    #[error("database pool: {0}")]
    Pool(String),
}

/// The database: pools, TLS connector and limits. Cheap to share in an `Arc`.
pub struct Database {
    main: Pool,
    main_target: String,
    readonly: Option<Pool>,
    readonly_target: String,
    tls: MakeRustlsConnect,
    settings: Settings,
    /// Database messages refused for their size, on every connection.
    oversized: Arc<Oversized>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("main", &self.main_target)
            .field("readonly", &self.readonly_target)
            .field("settings", &self.settings)
            .finish()
    }
}

impl Database {
    /// Builds the pools for `settings` without connecting.
    ///
    /// # Errors
    /// [`SetupError`] when the TLS roots or a pool cannot be set up.
    pub fn new(settings: Settings) -> Result<Self, SetupError> {
        let tls = tls::connector(settings.ssl_root_cert.as_deref())?;
        let oversized = Arc::new(Oversized::default());
        let main = build_pool(settings.database.clone(), &tls, &settings, &oversized)?;
        let mut readonly_config = settings.database.clone();
        readonly_config.user(&settings.readonly_role);
        let readonly = match &settings.readonly_login {
            ReadOnlyLogin::OwnLogin { password } => {
                readonly_config
                    .password(password.as_bytes())
                    .application_name("mcp-postgres-readonly");
                Some(build_pool(
                    readonly_config.clone(),
                    &tls,
                    &settings,
                    &oversized,
                )?)
            }
            ReadOnlyLogin::SetRole => None,
        };
        Ok(Self {
            main_target: describe_target(&settings.database),
            readonly_target: describe_target(&readonly_config),
            main,
            readonly,
            tls,
            settings,
            oversized,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.settings.limits
    }

    /// `user@host:port/db` of the main pool, without the password.
    pub fn target(&self) -> &str {
        &self.main_target
    }

    /// Opens one connection and returns the server's version string: the
    /// start-up check.
    ///
    /// # Errors
    /// The tool-style message of a connection failure.
    pub async fn server_version(&self) -> Result<String, String> {
        let limits = self.limits();
        self.read(Access::Service, move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one("SELECT current_setting('server_version')", &[])
                    .await
                    .map_err(|error| errors::query_error(&error, &limits))?;
                row.try_get::<_, String>(0)
                    .map_err(|error| error.to_string())
            })
        })
        .await
    }

    /// Whether `DATABASE_URL` logs in as a superuser (`rolsuper` of the
    /// session user).
    ///
    /// # Errors
    /// The message of a failed connection or query.
    pub async fn superuser_login(&self) -> Result<bool, String> {
        let limits = self.limits();
        self.read(Access::Service, move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)",
                        &[],
                    )
                    .await
                    .map_err(|error| errors::query_error(&error, &limits))?;
                row.try_get::<_, bool>(0).map_err(|error| error.to_string())
            })
        })
        .await
    }

    /// Runs `work` in a read-only transaction as `access`, then rolls back.
    ///
    /// Before `work`, the transaction gets a local `statement_timeout`
    /// (`PG_STATEMENT_TIMEOUT_MS`) and `idle_in_transaction_session_timeout`;
    /// for [`Access::ReadOnlyRole`] without a login of its own it also
    /// switches to the role with a local `SET ROLE`, refusing when the
    /// session user is a superuser (who could switch back from inside a
    /// statement). After the rollback, session advisory locks are released.
    /// The whole call is bounded by twice the statement timeout plus two
    /// seconds; past that the statement is cancelled and the connection
    /// discarded.
    ///
    /// # Errors
    /// The tool error message: no connection, a setup failure, or what
    /// `work` returned.
    pub async fn read<T, F>(&self, access: Access, work: F) -> Result<T, String>
    where
        T: Send,
        F: for<'t, 'c> FnOnce(&'t Transaction<'c>) -> WorkFuture<'t, T> + Send,
    {
        let limits = self.limits();
        let (pool, target) = match (access, &self.readonly) {
            (Access::ReadOnlyRole, Some(pool)) => (pool, &self.readonly_target),
            _ => (&self.main, &self.main_target),
        };
        let set_role = access == Access::ReadOnlyRole && self.readonly.is_none();
        let mut connection = pool
            .get()
            .await
            .map_err(|error| errors::pool_error(&error, target, self.settings.connect_timeout))?;
        let cancel = connection.cancel_token();
        let deadline = limits.statement_timeout * 2 + Duration::from_secs(2);
        let role = self.settings.readonly_role.as_str();
        let refused_before = self.oversized.count();
        let outcome = tokio::time::timeout(
            deadline,
            run_transaction(
                &mut connection,
                &limits,
                deadline,
                set_role.then_some(role),
                access,
                work,
            ),
        )
        .await;
        match outcome {
            Ok((result, Health::Reusable)) => result,
            Ok((Err(_), _)) if self.oversized.count() > refused_before => {
                // The connection failed on a message over the cap, most
                // likely this statement's (see wire_guard).
                drop(Object::take(connection));
                Err(oversized_message(&limits))
            }
            Ok((result, Health::Discard)) => {
                drop(Object::take(connection));
                result
            }
            Err(_elapsed) => {
                let _ = tokio::time::timeout(
                    self.settings.connect_timeout,
                    cancel.cancel_query(self.tls.clone()),
                )
                .await;
                drop(Object::take(connection));
                Err(format!(
                    "the database did not answer within {} ms; the statement was cancelled. \
                     Retry, with a cheaper statement if it was a query.",
                    deadline.as_millis()
                ))
            }
        }
    }
}

/// The tool error of a statement whose result held a value larger than the
/// connection accepts ([`message_cap`]).
fn oversized_message(limits: &Limits) -> String {
    format!(
        "a row of the result is larger than {} bytes, the cap (PG_MAX_RESULT_BYTES): the \
         database was stopped sending it. Select a part of the value (left(text, 1000), \
         substring) or its length (octet_length), not the whole of it.",
        limits.max_result_bytes
    )
}

/// Whether a connection may go back to its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Reusable,
    Discard,
}

async fn run_transaction<T, F>(
    connection: &mut Object,
    limits: &Limits,
    deadline: Duration,
    set_role: Option<&str>,
    access: Access,
    work: F,
) -> (Result<T, String>, Health)
where
    F: for<'t, 'c> FnOnce(&'t Transaction<'c>) -> WorkFuture<'t, T>,
{
    let transaction = match connection.build_transaction().read_only(true).start().await {
        Ok(transaction) => transaction,
        Err(error) => return (Err(errors::query_error(&error, limits)), Health::Discard),
    };
    let result = match configure(&transaction, limits, deadline, set_role).await {
        Ok(()) => work(&transaction).await,
        Err(message) => Err(message),
    };
    let health = match transaction.rollback().await {
        Ok(()) => Health::Reusable,
        Err(_) => Health::Discard,
    };
    if health == Health::Discard || connection.is_closed() {
        return (result, Health::Discard);
    }
    if access == Access::ReadOnlyRole
        && connection
            .execute("SELECT pg_advisory_unlock_all()", &[])
            .await
            .is_err()
    {
        return (result, Health::Discard);
    }
    (result, Health::Reusable)
}

/// Sets the transaction-local limits (and role), in one round trip.
async fn configure(
    transaction: &Transaction<'_>,
    limits: &Limits,
    deadline: Duration,
    set_role: Option<&str>,
) -> Result<(), String> {
    let timeout = format!("{}ms", limits.statement_timeout.as_millis());
    let idle = format!("{}ms", deadline.as_millis());
    let result = match set_role {
        None => {
            transaction
                .query_one(
                    "SELECT set_config('statement_timeout', $1, true), \
                        set_config('idle_in_transaction_session_timeout', $2, true), \
                        false",
                    &[&timeout, &idle],
                )
                .await
        }
        Some(role) => {
            transaction
                .query_one(
                    "SELECT set_config('statement_timeout', $1, true), \
                        set_config('idle_in_transaction_session_timeout', $2, true), \
                        (SELECT rolsuper FROM pg_roles WHERE rolname = session_user), \
                        set_config('role', $3, true)",
                    &[&timeout, &idle, &role],
                )
                .await
        }
    };
    let row = result.map_err(|error| match set_role {
        Some(role) => format!(
            "cannot switch to the read-only role `{role}`: {}. Create it with \
             services/postgres/sql/readonly_role.sql and grant it to the DATABASE_URL user, or \
             set PG_READONLY_PASSWORD so that the role logs in itself.",
            errors::query_error(&error, limits)
        ),
        None => errors::query_error(&error, limits),
    })?;
    let superuser: Option<bool> = row.try_get(2).map_err(|error| error.to_string())?;
    if superuser == Some(true) {
        return Err(format!(
            "run_readonly_query is disabled: DATABASE_URL logs in as a superuser, and a \
             statement could undo SET ROLE {} with set_config('role', ...). The operator must \
             set PG_READONLY_PASSWORD so that the read-only role logs in itself (see \
             docs/services/postgres.md). Use query_employees and get_employee_schema meanwhile.",
            set_role.unwrap_or_default()
        ));
    }
    Ok(())
}

/// The largest message a connection accepts from the database: the result
/// cap plus room for the protocol and an error message.
pub fn message_cap(limits: &Limits) -> usize {
    limits.max_result_bytes.saturating_add(64 * 1024)
}

fn build_pool(
    config: tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    settings: &Settings,
    oversized: &Arc<Oversized>,
) -> Result<Pool, SetupError> {
    let manager = Manager::from_connect(
        config,
        GuardedConnect::new(
            tls.clone(),
            message_cap(&settings.limits),
            oversized.clone(),
        ),
        ManagerConfig {
            recycling_method: RecyclingMethod::Verified,
        },
    );
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(settings.limits.statement_timeout * 2 + settings.connect_timeout),
            create: Some(settings.connect_timeout),
            recycle: Some(settings.connect_timeout),
        })
        .build()
        .map_err(|error| SetupError::Pool(error.to_string()))
}
