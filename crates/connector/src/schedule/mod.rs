//! Night-window submission: when submissions may run ([`Schedule`], from `[schedule]`), the clock
//! they are timed by ([`Clock`]), and which snapshot of each call a window pass POSTs
//! ([`NewestIndex`]).
//!
//! Contract: NHS England's "Flowing ADS data" asks that "the data items are to flow daily between
//! 3am and 6am", and says that "the latest submission overwrites the last … there is no need to
//! re-submit an open item as the next submission will correct it by default". So in `window`
//! mode the connector holds records until the window opens, then makes one pass over the
//! backlog that POSTs only the newest snapshot of each call and acks every older one
//! `superseded` by the offset of the one that replaced it. Everything here is pure except
//! [`SystemClock`], [`sleep_until`] and [`Schedule::describe`]; nothing refers to the rest of the
//! crate.
//!
//! | file | role |
//! |---|---|
//! | `config.rs` | `[schedule]` as written ([`ScheduleConfig`]), its keys ([`Setting`]), validation ([`ScheduleError`]) |
//! | `window.rs` | [`Schedule`], [`Window`], [`ScheduleState`]: local-time windows in an IANA zone, clock-change policy |
//! | `clock.rs` | [`Clock`], [`SystemClock`], [`ManualClock`], [`sleep_until`] |
//! | `coalesce.rs` | [`NewestIndex`], [`BacklogIndex`], [`Verdict`]: newest snapshot per call, exact keys in an arena |

pub mod clock;
pub mod coalesce;
pub mod config;
pub mod window;

pub use clock::{sleep_until, Clock, ManualClock, SystemClock, Wake};
pub use coalesce::{BacklogIndex, NewestIndex, ObserveError, Verdict};
pub use config::{ScheduleConfig, ScheduleError, Setting};
pub use window::{OnOverrun, Schedule, ScheduleState, Window};
