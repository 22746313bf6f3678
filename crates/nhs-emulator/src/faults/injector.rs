//! The dice of fault injection: [`Injector`] holds the [`FaultProfile`] in force and one `StdRng`
//! seeded from it, and decides request by request what a `$process-message` request
//! ([`ApiPlan`]: a delay and an [`ApiFault`]) or a token request ([`TokenFault`]) gets. Windows
//! are measured from the moment the profile took effect. One short lock per decision, no
//! `.await`, no I/O.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::{FaultProfile, FaultWindow, LatencyRange};

/// What to do with a `$process-message` request that passed the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiFault {
    /// Accept and record it.
    None,
    /// Answer with this status instead.
    Status(u16),
    /// Reset the connection without a response.
    Reset,
}

/// The delay and the fault for one `$process-message` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApiPlan {
    pub delay: Duration,
    pub fault: ApiFault,
}

/// What to do with a token request, before any check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenFault {
    None,
    /// Refuse it (an outage): with Apigee's 503, or the profile's `token_outage_status`.
    Unavailable(TokenRefusal),
    /// Reset the connection without a response.
    Reset,
}

/// How an injected token outage answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenRefusal {
    /// The status (503 unless the profile says otherwise).
    pub status: u16,
    /// `Retry-After` of a 429 (the profile's `retry_after`; zero sends 1 s).
    pub retry_after: Duration,
    /// Write that `Retry-After` as an HTTP-date rather than delta-seconds.
    pub http_date: bool,
}

/// The profile in force and its dice; cheap to consult (one short lock, no `.await`).
#[derive(Debug)]
pub(crate) struct Injector {
    dice: Mutex<Dice>,
}

#[derive(Debug)]
struct Dice {
    profile: FaultProfile,
    rng: StdRng,
    since: Instant,
}

impl Dice {
    fn new(profile: FaultProfile) -> Self {
        let rng = match profile.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            profile,
            rng,
            since: Instant::now(),
        }
    }

    fn is_open(&self, window: Option<&FaultWindow>) -> bool {
        window.is_some_and(|w| w.is_open(self.since.elapsed()))
    }
}

impl Injector {
    pub(crate) fn new(profile: FaultProfile) -> Self {
        Self {
            dice: Mutex::new(Dice::new(profile)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Dice> {
        self.dice
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts `profile` in force: reseeds the dice and restarts its windows' clock.
    pub(crate) fn set(&self, profile: FaultProfile) {
        *self.lock() = Dice::new(profile);
    }

    pub(crate) fn profile(&self) -> FaultProfile {
        self.lock().profile.clone()
    }

    /// The `Retry-After` to refuse with when a 429 storm is on.
    pub(crate) fn storm(&self) -> Option<Duration> {
        let dice = self.lock();
        dice.is_open(dice.profile.storm.as_ref())
            .then_some(dice.profile.retry_after)
    }

    /// `Retry-After` of injected 429s.
    pub(crate) fn retry_after(&self) -> Duration {
        self.lock().profile.retry_after
    }

    /// Draws the delay, then the fault, for a `$process-message` request past the quota.
    pub(crate) fn plan_api(&self) -> ApiPlan {
        let mut dice = self.lock();
        let Dice { profile, rng, .. } = &mut *dice;
        let LatencyRange { min, max } = profile.latency;
        let delay = if max > min {
            let ms = rng.gen_range(min.as_millis() as u64..=max.as_millis() as u64);
            Duration::from_millis(ms)
        } else {
            min
        };
        let roll: f64 = rng.gen();
        let mut bound = profile.reset_rate;
        let fault = if roll < bound {
            ApiFault::Reset
        } else {
            profile
                .status_rates
                .iter()
                .find(|(_, rate)| {
                    bound += **rate;
                    roll < bound
                })
                .map_or(ApiFault::None, |(status, _)| ApiFault::Status(*status))
        };
        ApiPlan { delay, fault }
    }

    /// Decides the fate of a token request: windows first (reset, then outage), then the rates.
    pub(crate) fn plan_token(&self) -> TokenFault {
        let mut dice = self.lock();
        let refusal = TokenFault::Unavailable(TokenRefusal {
            status: dice.profile.token_outage_status.unwrap_or(503),
            retry_after: dice.profile.retry_after,
            http_date: dice.profile.retry_after_http_date,
        });
        if dice.is_open(dice.profile.token_reset_window.as_ref()) {
            return TokenFault::Reset;
        }
        if dice.is_open(dice.profile.token_outage_window.as_ref()) {
            return refusal;
        }
        let (reset, outage) = (
            dice.profile.token_reset_rate,
            dice.profile.token_outage_rate,
        );
        let roll: f64 = dice.rng.gen();
        if roll < reset {
            TokenFault::Reset
        } else if roll < reset + outage {
            refusal
        } else {
            TokenFault::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_rates_in_order() {
        let always_reset = Injector::new(FaultProfile::parse("reset=1").unwrap());
        assert_eq!(always_reset.plan_api().fault, ApiFault::Reset);
        let always_503 = Injector::new(FaultProfile::parse("503=1,latency=7ms").unwrap());
        let plan = always_503.plan_api();
        assert_eq!(plan.fault, ApiFault::Status(503));
        assert_eq!(plan.delay, Duration::from_millis(7));
        let calm = Injector::new(FaultProfile::default());
        assert_eq!(calm.plan_api().fault, ApiFault::None);
        assert_eq!(calm.plan_token(), TokenFault::None);
        assert_eq!(calm.storm(), None);
        let token_429 = Injector::new(
            FaultProfile::parse("token_outage=1,token_outage_status=429,retry_after=4s").unwrap(),
        );
        assert_eq!(
            token_429.plan_token(),
            TokenFault::Unavailable(TokenRefusal {
                status: 429,
                retry_after: Duration::from_secs(4),
                http_date: false,
            })
        );
    }
}
