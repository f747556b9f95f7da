//! diesel's process-wide default instrumentation.
//!
//! diesel takes the default as a plain `fn` pointer, which cannot capture options, so the
//! [`DieselTracing`] it builds from lives in a static the function reads.

use std::sync::{PoisonError, RwLock};

use diesel::QueryResult;
use diesel::connection::{Instrumentation, set_default_instrumentation};

use crate::{DieselOptions, DieselTracing};

static INSTALLED: RwLock<Option<DieselTracing>> = RwLock::new(None);

fn default_instrumentation() -> Option<Box<dyn Instrumentation>> {
    let tracing = INSTALLED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()?;
    Some(Box::new(tracing.instrumentation()))
}

/// Traces every diesel connection established from now on — directly, through r2d2 or through
/// diesel-async's pools — with the default [`DieselOptions`] (global providers).
///
/// ```no_run
/// tracewire_diesel::install().expect("diesel instrumentation");
/// ```
pub fn install() -> QueryResult<()> {
    install_with(DieselOptions::default())
}

/// [`install`] with `options`. Calling it again replaces the options for connections established
/// afterwards.
///
/// ```no_run
/// use tracewire_diesel::DieselOptions;
/// use tracewire_shared::Config;
///
/// tracewire_diesel::install_with(DieselOptions::new().config(Config::new().with_require_parent(true)))
///     .expect("diesel instrumentation");
/// ```
pub fn install_with(options: DieselOptions) -> QueryResult<()> {
    *INSTALLED.write().unwrap_or_else(PoisonError::into_inner) = Some(DieselTracing::new(options));
    set_default_instrumentation(default_instrumentation)
}

/// The installed instrumentation, if [`install`] ran; for instrumenting connections opened before.
///
/// ```no_run
/// # #[cfg(feature = "sqlite")] {
/// use diesel::prelude::*;
/// use tracewire_diesel::ConnectionInfo;
///
/// let mut conn = SqliteConnection::establish("app.db").unwrap();
/// tracewire_diesel::install().unwrap();
/// if let Some(tracing) = tracewire_diesel::installed() {
///     conn.set_instrumentation(tracing.for_open_connection(ConnectionInfo::parse("app.db")));
/// }
/// # }
/// ```
pub fn installed() -> Option<DieselTracing> {
    INSTALLED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}
