//! Realistic synthetic `cad.call.v1` calls, for the demo, the `generate` command, tests and
//! benchmarks.
//!
//! **Determinism:** a [`Generator`] is a seeded ChaCha8 stream (portable across platforms and
//! `rand` versions), so the same seed and the same sequence of calls give the same calls, byte
//! for byte. Nothing reads the wall clock: times start at a fixed instant (or the one given to
//! [`Generator::starting_at`]).
//!
//! **Realism:** English ambulance trust ODS codes, call origins weighted towards 999, AMPDS or
//! Pathways triage consistent with the response category, 0–3 responses with call signs, 0–2
//! patient contacts with valid (synthetic `9…`) NHS numbers and their verification status,
//! names from small lists, postcodes of the trust's area, a receiving hospital of the trust's
//! area, and timestamps that follow the life of a call. **Validity:** every call produced passes [`ads_connector::cad::decode`].
//!
//! A call evolves one *event* at a time (triage, call ended, resource mobilised, arrived on
//! scene, left scene, …); every event happens after the previous snapshot, so each new snapshot
//! is strictly later and only ever adds information.
//!
//! Layout: this file holds [`Generator`] and the start of each call; `generate/events.rs` the
//! events of a call's life; `generate/patient.rs` patient contacts and their clinical records;
//! `generate/data.rs` the trusts, codes and names they draw from.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use ads_connector::cad::{CadCall, CallOrigin, CallTimes, SCHEMA_ID};

mod data;
mod events;
mod patient;

use data::TRUSTS;

/// A deterministic source of synthetic CAD calls and their later snapshots.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: ChaCha8Rng,
    /// When the next new call is answered.
    clock: DateTime<Utc>,
    /// Sequence number of the next call id.
    seq: u64,
}

/// The call as one line of JSON (no trailing newline): a `cad.call.v1` record value.
pub fn to_json_line(call: &CadCall) -> String {
    serde_json::to_string(call).expect("a CadCall always serialises")
}

impl Generator {
    /// A generator whose first call is answered at 2025-03-03T07:00:00Z.
    pub fn new(seed: u64) -> Self {
        let start = Utc
            .with_ymd_and_hms(2025, 3, 3, 7, 0, 0)
            .single()
            .expect("a valid fixed instant");
        Self::starting_at(seed, start)
    }

    /// A generator whose first call is answered at `start` (e.g. now, for live demos).
    pub fn starting_at(seed: u64, start: DateTime<Utc>) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let seq = rng.gen_range(1..500_000);
        Generator {
            rng,
            clock: start,
            seq,
        }
    }

    /// A new call, answered a little after the previous one, at a random stage of its life
    /// (from just answered to fully closed).
    pub fn next_call(&mut self) -> CadCall {
        self.clock += secs(self.rng.gen_range(5..=90));
        let answered = self.clock;
        let trust = TRUSTS.choose(&mut self.rng).expect("non-empty");
        let submitter = match trust.ods {
            // Since 2022 South Central handles the Isle of Wight's 999 calls.
            "R1F" if self.rng.gen_bool(0.6) => "RYE",
            ods => ods,
        };
        let origin = self.call_origin();
        self.seq += 1;
        let mut call = CadCall {
            schema: SCHEMA_ID.to_string().into(),
            snapshot_at: answered + secs(self.rng.gen_range(2..=20)),
            provider_ods: trust.ods.to_string().into(),
            submitter_ods: submitter.to_string().into(),
            call_id: format!("{}-{:06}", answered.format("%y%m%d"), self.seq % 1_000_000).into(),
            call_date: answered.date_naive(),
            call_origin: origin,
            nhs111_flag: Some(origin == CallOrigin::Nhs111),
            aqi_flag: Some(!matches!(
                origin,
                CallOrigin::OperationalRunningCall | CallOrigin::EventRunningCall
            )),
            triage: None,
            initial_response_category: None,
            reporting_response_category: None,
            cat1_early_prediction: None,
            stop_code: None,
            treatment_type: None,
            times: CallTimes {
                call_answered: answered,
                call_ended: None,
                dispatch_code_established: None,
                clock_start: None,
                clock_stop: None,
            },
            responses: Vec::new(),
            patients: Vec::new(),
        };
        let steps = self.rng.gen_range(0..=16);
        for _ in 0..steps {
            if !self.step(&mut call) {
                break;
            }
        }
        call
    }

    /// A later snapshot of `call`: `snapshot_at` strictly later and, unless the call is already
    /// closed, one to three more events filled in. `call` should be valid.
    pub fn next_update(&mut self, call: &CadCall) -> CadCall {
        let mut next = call.clone();
        let steps = self.rng.gen_range(1..=3);
        let mut changed = false;
        for _ in 0..steps {
            if !self.step(&mut next) {
                break;
            }
            changed = true;
        }
        if !changed {
            // Closed call: a re-publication with nothing new (CAD systems do this).
            next.snapshot_at += secs(self.rng.gen_range(60..=600));
        }
        next
    }

    fn call_origin(&mut self) -> CallOrigin {
        const WEIGHTED: [(CallOrigin, u32); 10] = [
            (CallOrigin::Emergency999, 800),
            (CallOrigin::Nhs111, 120),
            (CallOrigin::HealthcareProfessional, 40),
            (CallOrigin::Police, 15),
            (CallOrigin::Telecare, 8),
            (CallOrigin::OtherAmbulanceService, 5),
            (CallOrigin::FireService, 4),
            (CallOrigin::BritishTransportPolice, 3),
            (CallOrigin::Coastguard, 2),
            (CallOrigin::OtherAgency, 3),
        ];
        WEIGHTED
            .choose_weighted(&mut self.rng, |(_, w)| *w)
            .expect("positive weights")
            .0
    }
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ads_connector::cad::decode;

    #[test]
    fn generated_calls_and_updates_decode() {
        let mut generator = Generator::new(7);
        for _ in 0..300 {
            let call = generator.next_call();
            decode(to_json_line(&call).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            let update = generator.next_update(&call);
            decode(to_json_line(&update).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn same_seed_gives_the_same_calls() {
        let (mut a, mut b) = (Generator::new(42), Generator::new(42));
        for _ in 0..50 {
            let (x, y) = (a.next_call(), b.next_call());
            assert_eq!(to_json_line(&x), to_json_line(&y));
            assert_eq!(
                to_json_line(&a.next_update(&x)),
                to_json_line(&b.next_update(&y))
            );
        }
        assert_ne!(
            to_json_line(&Generator::new(1).next_call()),
            to_json_line(&Generator::new(2).next_call())
        );
    }

    #[test]
    fn updates_are_strictly_later_and_only_add_timestamps() {
        let mut generator = Generator::new(3);
        for _ in 0..100 {
            let mut call = generator.next_call();
            for _ in 0..20 {
                let next = generator.next_update(&call);
                assert!(next.snapshot_at > call.snapshot_at);
                assert_eq!(next.call_key(), call.call_key());
                assert!(timestamps(&next) >= timestamps(&call));
                call = next;
            }
        }
    }

    #[test]
    fn produces_the_full_range_of_responses_and_patients() {
        let mut generator = Generator::new(11);
        let (mut responses, mut patients, mut origins) = (vec![0; 4], vec![0; 3], 0);
        for _ in 0..1000 {
            let call = generator.next_call();
            responses[call.responses.len()] += 1;
            patients[call.patients.len()] += 1;
            origins += usize::from(call.call_origin == CallOrigin::Emergency999);
        }
        assert!(responses.iter().all(|n| *n > 0), "{responses:?}");
        assert!(patients.iter().all(|n| *n > 0), "{patients:?}");
        assert!((700..900).contains(&origins), "{origins}");
    }

    fn timestamps(call: &CadCall) -> usize {
        let v = serde_json::to_value(call).unwrap();
        fn count(v: &serde_json::Value) -> usize {
            match v {
                serde_json::Value::String(s) => usize::from(s.len() >= 20 && s.ends_with('Z')),
                serde_json::Value::Array(a) => a.iter().map(count).sum(),
                serde_json::Value::Object(o) => o.values().map(count).sum(),
                _ => 0,
            }
        }
        count(&v) - 1 // minus snapshot_at
    }
}
