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
//! area, and timestamps that follow the life of a call. **Validity:** every call produced passes [`crate::cad::decode`].
//!
//! A call evolves one *event* at a time (triage, call ended, resource mobilised, arrived on
//! scene, left scene, …); every event happens after the previous snapshot, so each new snapshot
//! is strictly later and only ever adds information.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cad::{
    nhs_check_digit, CadCall, CallOrigin, CallTimes, ClinicalCode, Conveyance, ConveyanceOutcome,
    Demographics, Destination, Dose, Gender, Medication, NhsNumberStatus, Observation,
    ObservationKind, PatientContact, ResourceType, Response, ResponseCategory, ResponseTimes,
    TreatmentType, Triage, TriageSystem, SCHEMA_ID,
};

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
            schema: SCHEMA_ID.to_string(),
            snapshot_at: answered + secs(self.rng.gen_range(2..=20)),
            provider_ods: trust.ods.to_string(),
            submitter_ods: submitter.to_string(),
            call_id: format!("{}-{:06}", answered.format("%y%m%d"), self.seq % 1_000_000),
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

    /// Applies the next event of the call's life; false when nothing is left to happen.
    fn step(&mut self, call: &mut CadCall) -> bool {
        let Some(event) = self.pick_event(call) else {
            return false;
        };
        let after = call.snapshot_at;
        let t = after + secs(self.rng.gen_range(event.delay_secs()));
        match event {
            Event::Triage => self.triage(call, t),
            Event::EndCall => call.times.call_ended = Some(t),
            Event::CloseHearAndTreat => call.times.clock_stop = Some(t),
            Event::Mobilise => self.mobilise(call, t),
            Event::Advance(i) => self.advance(call, i, t),
        }
        call.snapshot_at = t + secs(self.rng.gen_range(1..=10));
        true
    }

    fn pick_event(&mut self, call: &CadCall) -> Option<Event> {
        if call.times.dispatch_code_established.is_none() {
            return Some(Event::Triage);
        }
        let mut candidates = Vec::new();
        if call.times.call_ended.is_none() {
            candidates.push(Event::EndCall);
        }
        if call.treatment_type == Some(TreatmentType::HearAndTreat) {
            if call.times.clock_stop.is_none() && call.times.call_ended.is_some() {
                candidates.push(Event::CloseHearAndTreat);
            }
        } else {
            let any_clear = call.responses.iter().any(|r| r.times.clear.is_some());
            if call.responses.is_empty()
                || (call.responses.len() < 3 && !any_clear && self.rng.gen_bool(0.2))
            {
                candidates.push(Event::Mobilise);
            }
            for (i, r) in call.responses.iter().enumerate() {
                if r.times.clear.is_none() && r.times.stood_down.is_none() {
                    candidates.push(Event::Advance(i));
                }
            }
        }
        candidates.choose(&mut self.rng).copied()
    }

    fn triage(&mut self, call: &mut CadCall, t: DateTime<Utc>) {
        let trust = trust(&call.provider_ods);
        let system = if call.call_origin == CallOrigin::Nhs111 {
            TriageSystem::Pathways
        } else {
            trust.triage
        };
        let category = *[
            (ResponseCategory::C1, 10),
            (ResponseCategory::C2, 55),
            (ResponseCategory::C3, 25),
            (ResponseCategory::C4, 5),
            (ResponseCategory::C5, 5),
        ]
        .choose_weighted(&mut self.rng, |(_, w)| *w)
        .map(|(c, _)| c)
        .expect("positive weights");
        let triage = match system {
            TriageSystem::Ampds => {
                let (code, _) = *AMPDS
                    .iter()
                    .filter(|(_, c)| *c == category)
                    .collect::<Vec<_>>()
                    .choose(&mut self.rng)
                    .expect("every category has AMPDS codes");
                Triage {
                    system,
                    disposition_code: code.to_string(),
                    symptom_group: None,
                    symptom_discriminator: None,
                }
            }
            TriageSystem::Pathways => {
                let (code, _) = *PATHWAYS
                    .iter()
                    .filter(|(_, c)| *c == category)
                    .collect::<Vec<_>>()
                    .choose(&mut self.rng)
                    .expect("every category has Pathways codes");
                Triage {
                    system,
                    disposition_code: code.to_string(),
                    symptom_group: Some(self.rng.gen_range(1000..1200).to_string()),
                    symptom_discriminator: Some(self.rng.gen_range(2000..5000).to_string()),
                }
            }
        };
        let reporting = if self.rng.gen_bool(0.1) {
            let n = category.number() as usize;
            let shifted = if n > 1 && self.rng.gen_bool(0.5) {
                n - 2
            } else {
                n.min(4)
            };
            ResponseCategory::ALL[shifted]
        } else {
            category
        };
        call.triage = Some(triage);
        call.initial_response_category = Some(category);
        call.reporting_response_category = Some(reporting);
        if category == ResponseCategory::C1 && self.rng.gen_bool(0.3) {
            call.cat1_early_prediction = Some("01".to_string());
        }
        call.times.dispatch_code_established = Some(t);
        // ARP: the clock starts at the earliest of the dispatch code and 240 s after connection.
        call.times.clock_start = Some(t.min(call.times.call_answered + secs(240)));
        let hear_and_treat = reporting == ResponseCategory::C5
            || (reporting >= ResponseCategory::C3 && self.rng.gen_bool(0.1));
        if hear_and_treat {
            call.treatment_type = Some(TreatmentType::HearAndTreat);
            call.stop_code = Some("01".to_string());
        }
    }

    fn mobilise(&mut self, call: &mut CadCall, t: DateTime<Utc>) {
        let trust = trust(&call.provider_ods);
        let call_sign = loop {
            let candidate = format!(
                "{}{}",
                trust.call_sign_prefix,
                self.rng.gen_range(100..1000)
            );
            if !call.responses.iter().any(|r| r.call_sign == candidate) {
                break candidate;
            }
        };
        let resource_type = *[
            (ResourceType::EmergencyAmbulance, 70),
            (ResourceType::RapidResponseVehicle, 15),
            (ResourceType::SpecialistPractitioner, 5),
            (ResourceType::IntermediateTier, 4),
            (ResourceType::CommunityFirstResponder, 3),
            (ResourceType::HazardousAreaResponse, 1),
            (ResourceType::AirAmbulance, 2),
        ]
        .choose_weighted(&mut self.rng, |(_, w)| *w)
        .map(|(r, _)| r)
        .expect("positive weights");
        call.responses.push(Response {
            call_sign,
            resource_type,
            times: ResponseTimes {
                mobilised: Some(t),
                ..ResponseTimes::default()
            },
        });
    }

    fn advance(&mut self, call: &mut CadCall, i: usize, t: DateTime<Utc>) {
        let call_sign = call.responses[i].call_sign.clone();
        let times = call.responses[i].times.clone();
        let someone_on_scene = call
            .responses
            .iter()
            .any(|r| r.times.arrived_on_scene.is_some());
        let set = |call: &mut CadCall, f: fn(&mut ResponseTimes) -> &mut Option<DateTime<Utc>>| {
            *f(&mut call.responses[i].times) = Some(t);
        };
        if times.arrived_on_scene.is_none() {
            if someone_on_scene && self.rng.gen_bool(0.5) {
                set(call, |r| &mut r.stood_down);
                return;
            }
            set(call, |r| &mut r.arrived_on_scene);
            if call.times.clock_stop.is_none() {
                call.times.clock_stop = Some(t);
            }
            if call.patients.is_empty() {
                let count = *[(0usize, 15), (1, 75), (2, 10)]
                    .choose_weighted(&mut self.rng, |(_, w)| *w)
                    .map(|(n, _)| n)
                    .expect("positive weights");
                for n in 1..=count {
                    let patient = self.patient(call, n, &call_sign);
                    call.patients.push(patient);
                }
            } else if self.rng.gen_bool(0.5) {
                let first = &mut call.patients[0];
                if !first.call_signs.contains(&call_sign) {
                    first.call_signs.push(call_sign);
                }
            }
        } else if times.left_scene.is_none() && times.clear.is_none() {
            self.leave_scene(call, i, t);
        } else if times.arrived_receiving_location.is_none() {
            set(call, |r| &mut r.arrived_receiving_location);
        } else if times.patient_handover.is_none() {
            set(call, |r| &mut r.patient_handover);
        } else if times.clinical_handover.is_none() {
            set(call, |r| &mut r.clinical_handover);
        } else {
            set(call, |r| &mut r.clear);
        }
    }

    /// On-scene assessment ends: the response either conveys its patients or clears.
    fn leave_scene(&mut self, call: &mut CadCall, i: usize, t: DateTime<Utc>) {
        let call_sign = call.responses[i].call_sign.clone();
        let led: Vec<usize> = (0..call.patients.len())
            .filter(|&p| {
                call.patients[p].call_signs.first() == Some(&call_sign)
                    && call.patients[p].conveyance.is_none()
            })
            .collect();
        let conveys = !led.is_empty()
            && call.responses[i].resource_type != ResourceType::RapidResponseVehicle
            && self.rng.gen_bool(0.65);
        let trust = trust(&call.provider_ods);
        let (ods_site, name) = *trust.hospitals.choose(&mut self.rng).expect("non-empty");
        for p in led {
            let outcome = if conveys {
                if self.rng.gen_bool(0.85) {
                    ConveyanceOutcome::ConveyedToEmergencyDepartment
                } else {
                    ConveyanceOutcome::ConveyedToOtherDestination
                }
            } else {
                *[
                    (ConveyanceOutcome::TreatedAtScene, 55),
                    (ConveyanceOutcome::ReferredToOtherService, 25),
                    (ConveyanceOutcome::RefusedConveyance, 12),
                    (ConveyanceOutcome::NotConveyedOther, 6),
                    (ConveyanceOutcome::Deceased, 2),
                ]
                .choose_weighted(&mut self.rng, |(_, w)| *w)
                .map(|(o, _)| o)
                .expect("positive weights")
            };
            let arrived = call.responses[i].times.arrived_on_scene.unwrap_or(t);
            self.clinical_record(&mut call.patients[p], arrived, t);
            call.patients[p].conveyance = Some(Conveyance {
                outcome,
                destination: outcome.is_conveyed().then(|| Destination {
                    ods_site: ods_site.to_string(),
                    name: Some(name.to_string()),
                }),
                conveyed_by: outcome.is_conveyed().then(|| call_sign.clone()),
            });
        }
        call.treatment_type = treatment_type(&call.patients);
        if conveys {
            call.responses[i].times.left_scene = Some(t);
        } else {
            call.responses[i].times.clear = Some(t);
        }
    }

    fn patient(&mut self, call: &CadCall, n: usize, call_sign: &str) -> PatientContact {
        let trust = trust(&call.provider_ods);
        let gender = *[
            (Gender::Female, 50),
            (Gender::Male, 48),
            (Gender::Unknown, 1),
            (Gender::Other, 1),
        ]
        .choose_weighted(&mut self.rng, |(_, w)| *w)
        .map(|(g, _)| g)
        .expect("positive weights");
        let given = match gender {
            Gender::Female => FEMALE_NAMES,
            Gender::Male => MALE_NAMES,
            _ => NEUTRAL_NAMES,
        };
        let known = self.rng.gen_bool(0.95);
        let age_years = [(0..18, 12), (18..65, 38), (65..101, 50)]
            .choose_weighted(&mut self.rng, |(_, w)| *w)
            .map(|(r, _)| r.clone())
            .expect("positive weights");
        let age_days = self
            .rng
            .gen_range(age_years.start * 365..age_years.end * 365);
        let birth_date = call.call_date - Duration::days(age_days);
        let nhs_number = self.rng.gen_bool(0.85).then(|| self.nhs_number());
        // CAD systems trace most numbers against PDS; the rest arrive untraced or not at all.
        let nhs_number_status = match &nhs_number {
            Some(_) if self.rng.gen_bool(0.8) => Some(NhsNumberStatus::Verified),
            Some(_) => Some(NhsNumberStatus::NotTraced),
            None if self.rng.gen_bool(0.5) => Some(NhsNumberStatus::TraceRequired),
            None => None,
        };
        PatientContact {
            contact_id: n.to_string(),
            call_signs: vec![call_sign.to_string()],
            demographics: Demographics {
                nhs_number: nhs_number.clone(),
                nhs_number_status,
                given_name: known.then(|| given.choose(&mut self.rng).expect("names").to_string()),
                family_name: known.then(|| {
                    FAMILY_NAMES
                        .choose(&mut self.rng)
                        .expect("names")
                        .to_string()
                }),
                birth_date: self.rng.gen_bool(0.95).then_some(birth_date),
                gender: Some(gender),
                postcode: self.rng.gen_bool(0.9).then(|| self.postcode(trust)),
            },
            conveyance: None,
            observations: Vec::new(),
            diagnoses: Vec::new(),
            injuries: Vec::new(),
            medications: Vec::new(),
            procedures: Vec::new(),
            safeguarding: Vec::new(),
            public_health: Vec::new(),
        }
    }

    /// Observations, impressions and treatment recorded between arrival and leaving scene.
    fn clinical_record(&mut self, p: &mut PatientContact, from: DateTime<Utc>, to: DateTime<Utc>) {
        let span = (to - from).num_seconds().max(1);
        let at = |rng: &mut ChaCha8Rng| from + secs(rng.gen_range(0..=span));
        let taken_at = at(&mut self.rng);
        let obs = |kind, value: f64| Observation {
            kind,
            value,
            taken_at,
        };
        let r = &mut self.rng;
        p.observations = vec![
            obs(ObservationKind::HeartRate, r.gen_range(48..140) as f64),
            obs(ObservationKind::RespiratoryRate, r.gen_range(10..32) as f64),
            obs(
                ObservationKind::OxygenSaturation,
                r.gen_range(86..=100) as f64,
            ),
            obs(
                ObservationKind::SystolicBloodPressure,
                r.gen_range(85..190) as f64,
            ),
            obs(
                ObservationKind::DiastolicBloodPressure,
                r.gen_range(45..105) as f64,
            ),
            obs(
                ObservationKind::Temperature,
                r.gen_range(355..=395) as f64 / 10.0,
            ),
            obs(
                ObservationKind::GcsTotal,
                if r.gen_bool(0.9) {
                    15.0
                } else {
                    r.gen_range(3..15) as f64
                },
            ),
            obs(ObservationKind::News2Score, r.gen_range(0..=12) as f64),
            obs(ObservationKind::PainScore, r.gen_range(0..=10) as f64),
        ];
        if r.gen_bool(0.3) {
            p.observations.push(obs(
                ObservationKind::BloodGlucose,
                r.gen_range(30..=150) as f64 / 10.0,
            ));
        }
        let coded = |(code, display): (&str, &str), when| ClinicalCode {
            snomed: code.to_string(),
            display: Some(display.to_string()),
            recorded_at: Some(when),
        };
        if self.rng.gen_bool(0.8) {
            let d = *DIAGNOSES.choose(&mut self.rng).expect("codes");
            p.diagnoses.push(coded(d, at(&mut self.rng)));
        }
        if self.rng.gen_bool(0.25) {
            let d = *INJURIES.choose(&mut self.rng).expect("codes");
            p.injuries.push(coded(d, at(&mut self.rng)));
        }
        for _ in 0..self.rng.gen_range(0..=2) {
            let (code, display, amount, unit) = *MEDICATIONS.choose(&mut self.rng).expect("codes");
            p.medications.push(Medication {
                snomed: code.to_string(),
                display: Some(display.to_string()),
                dose: Some(Dose {
                    value: amount,
                    unit: unit.to_string(),
                }),
                administered_at: Some(at(&mut self.rng)),
            });
        }
        if self.rng.gen_bool(0.3) {
            let d = *PROCEDURES.choose(&mut self.rng).expect("codes");
            p.procedures.push(coded(d, at(&mut self.rng)));
        }
        if self.rng.gen_bool(0.03) {
            let d = *SAFEGUARDING.choose(&mut self.rng).expect("codes");
            p.safeguarding.push(coded(d, at(&mut self.rng)));
        }
        if self.rng.gen_bool(0.08) {
            let d = *PUBLIC_HEALTH.choose(&mut self.rng).expect("codes");
            p.public_health.push(coded(d, at(&mut self.rng)));
        }
    }

    /// A valid NHS number in the `9…` range NHS England reserves for test data.
    fn nhs_number(&mut self) -> String {
        loop {
            let mut digits = vec![9u32];
            digits.extend((0..8).map(|_| self.rng.gen_range(0..10)));
            if let Some(check) = nhs_check_digit(&digits) {
                digits.push(check);
                return digits.iter().map(|d| char::from(b'0' + *d as u8)).collect();
            }
        }
    }

    fn postcode(&mut self, trust: &Trust) -> String {
        // Inward-code letters never use C, I, K, M, O or V.
        const INWARD: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
        let area = trust.postcode_areas.choose(&mut self.rng).expect("areas");
        let district = self.rng.gen_range(1..=20);
        let sector = self.rng.gen_range(0..10);
        let a = *INWARD.choose(&mut self.rng).expect("letters") as char;
        let b = *INWARD.choose(&mut self.rng).expect("letters") as char;
        format!("{area}{district} {sector}{a}{b}")
    }
}

/// One event in the life of a call.
#[derive(Debug, Clone, Copy)]
enum Event {
    Triage,
    EndCall,
    CloseHearAndTreat,
    Mobilise,
    Advance(usize),
}

impl Event {
    /// Seconds after the previous snapshot at which this kind of event happens.
    fn delay_secs(self) -> std::ops::RangeInclusive<i64> {
        match self {
            Event::Triage => 30..=240,
            Event::EndCall => 60..=400,
            Event::CloseHearAndTreat => 300..=1800,
            Event::Mobilise => 20..=600,
            Event::Advance(_) => 120..=1800,
        }
    }
}

fn treatment_type(patients: &[PatientContact]) -> Option<TreatmentType> {
    let outcomes: Vec<ConveyanceOutcome> = patients
        .iter()
        .filter_map(|p| p.conveyance.as_ref().map(|c| c.outcome))
        .collect();
    if outcomes.contains(&ConveyanceOutcome::ConveyedToEmergencyDepartment) {
        Some(TreatmentType::SeeAndConveyEd)
    } else if outcomes.contains(&ConveyanceOutcome::ConveyedToOtherDestination) {
        Some(TreatmentType::SeeAndConveyOther)
    } else if outcomes.is_empty() {
        None
    } else {
        Some(TreatmentType::SeeAndTreat)
    }
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// An English ambulance service and the area it covers (synthetic but plausible details).
#[derive(Debug)]
struct Trust {
    ods: &'static str,
    call_sign_prefix: &'static str,
    triage: TriageSystem,
    postcode_areas: &'static [&'static str],
    hospitals: &'static [(&'static str, &'static str)],
}

fn trust(ods: &str) -> &'static Trust {
    TRUSTS.iter().find(|t| t.ods == ods).unwrap_or(&TRUSTS[0])
}

const TRUSTS: &[Trust] = &[
    Trust {
        ods: "RX6",
        call_sign_prefix: "NE",
        triage: TriageSystem::Pathways,
        postcode_areas: &["NE", "SR", "DH", "TS"],
        hospitals: &[
            ("RTD01", "Royal Victoria Infirmary"),
            ("R0B01", "Sunderland Royal Hospital"),
            ("RTR45", "James Cook University Hospital"),
        ],
    },
    Trust {
        ods: "RX7",
        call_sign_prefix: "NW",
        triage: TriageSystem::Pathways,
        postcode_areas: &["M", "L", "PR", "BB"],
        hospitals: &[
            ("R0A02", "Manchester Royal Infirmary"),
            ("REM21", "Aintree University Hospital"),
            ("RXN02", "Royal Preston Hospital"),
        ],
    },
    Trust {
        ods: "RX8",
        call_sign_prefix: "YA",
        triage: TriageSystem::Ampds,
        postcode_areas: &["LS", "S", "YO", "BD"],
        hospitals: &[
            ("RR813", "St James's University Hospital"),
            ("RR801", "Leeds General Infirmary"),
            ("RHQNG", "Northern General Hospital"),
        ],
    },
    Trust {
        ods: "RX9",
        call_sign_prefix: "EM",
        triage: TriageSystem::Ampds,
        postcode_areas: &["NG", "LE", "DE"],
        hospitals: &[
            ("RX1RA", "Queen's Medical Centre"),
            ("RWEAA", "Leicester Royal Infirmary"),
        ],
    },
    Trust {
        ods: "RYA",
        call_sign_prefix: "WM",
        triage: TriageSystem::Pathways,
        postcode_areas: &["B", "CV", "WV"],
        hospitals: &[
            ("RRK15", "Queen Elizabeth Hospital Birmingham"),
            ("RKB01", "University Hospital Coventry"),
        ],
    },
    Trust {
        ods: "RYC",
        call_sign_prefix: "EE",
        triage: TriageSystem::Ampds,
        postcode_areas: &["CB", "NR", "IP"],
        hospitals: &[
            ("RGT01", "Addenbrooke's Hospital"),
            ("RM102", "Norfolk and Norwich University Hospital"),
        ],
    },
    Trust {
        ods: "RYD",
        call_sign_prefix: "SC",
        triage: TriageSystem::Pathways,
        postcode_areas: &["BN", "CT", "RH"],
        hospitals: &[
            ("RXH01", "Royal Sussex County Hospital"),
            ("RVVKC", "Kent and Canterbury Hospital"),
        ],
    },
    Trust {
        ods: "RYE",
        call_sign_prefix: "SA",
        triage: TriageSystem::Pathways,
        postcode_areas: &["OX", "SO", "RG"],
        hospitals: &[
            ("RTH08", "John Radcliffe Hospital"),
            ("RHM01", "Southampton General Hospital"),
        ],
    },
    Trust {
        ods: "RRU",
        call_sign_prefix: "LA",
        triage: TriageSystem::Ampds,
        postcode_areas: &["SE", "N", "E", "SW"],
        hospitals: &[
            ("RJ122", "St Thomas' Hospital"),
            ("RAL01", "Royal Free Hospital"),
        ],
    },
    Trust {
        ods: "RYF",
        call_sign_prefix: "SW",
        triage: TriageSystem::Pathways,
        postcode_areas: &["BS", "EX", "PL"],
        hospitals: &[
            ("RA701", "Bristol Royal Infirmary"),
            ("RH801", "Royal Devon and Exeter Hospital"),
        ],
    },
    Trust {
        ods: "R1F",
        call_sign_prefix: "IW",
        triage: TriageSystem::Ampds,
        postcode_areas: &["PO"],
        hospitals: &[("R1F01", "St Mary's Hospital")],
    },
];

/// AMPDS determinants and the category they usually map to.
const AMPDS: &[(&str, ResponseCategory)] = &[
    ("09E01", ResponseCategory::C1),
    ("06E01", ResponseCategory::C1),
    ("10D04", ResponseCategory::C1),
    ("10C01", ResponseCategory::C2),
    ("28C01", ResponseCategory::C2),
    ("12D01", ResponseCategory::C2),
    ("29B01", ResponseCategory::C2),
    ("17B01", ResponseCategory::C3),
    ("26C02", ResponseCategory::C3),
    ("01A01", ResponseCategory::C3),
    ("17A01", ResponseCategory::C4),
    ("26A01", ResponseCategory::C4),
    ("26O01", ResponseCategory::C5),
    ("17O01", ResponseCategory::C5),
];

/// Pathways dispositions and the category they usually map to.
const PATHWAYS: &[(&str, ResponseCategory)] = &[
    ("Dx011", ResponseCategory::C1),
    ("Dx012", ResponseCategory::C2),
    ("Dx0121", ResponseCategory::C2),
    ("Dx013", ResponseCategory::C3),
    ("Dx014", ResponseCategory::C4),
    ("Dx015", ResponseCategory::C4),
    ("Dx05", ResponseCategory::C5),
    ("Dx06", ResponseCategory::C5),
];

const FEMALE_NAMES: &[&str] = &[
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Margaret", "Susan", "Patricia", "Jean", "Emily",
    "Sophie", "Grace", "Aisha", "Fatima",
];
const MALE_NAMES: &[&str] = &[
    "Oliver", "George", "Harry", "Jack", "Noah", "John", "David", "Michael", "Peter", "James",
    "William", "Thomas", "Mohammed", "Arjun",
];
const NEUTRAL_NAMES: &[&str] = &["Alex", "Sam", "Charlie", "Jordan", "Robin"];
const FAMILY_NAMES: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Patel", "Khan", "Begum", "O'Brien",
];

/// SNOMED CT concepts (id, term).
const DIAGNOSES: &[(&str, &str)] = &[
    ("29857009", "Chest pain"),
    ("22298006", "Myocardial infarction"),
    ("230690007", "Cerebrovascular accident"),
    ("195967001", "Asthma"),
    ("13645005", "Chronic obstructive lung disease"),
    ("271594007", "Syncope"),
    ("91175000", "Seizure"),
    ("233604007", "Pneumonia"),
    ("21522001", "Abdominal pain"),
    ("267036007", "Dyspnea"),
    ("410429000", "Cardiac arrest"),
    ("91302008", "Sepsis"),
    ("302866003", "Hypoglycemia"),
    ("25064002", "Headache"),
];
const INJURIES: &[(&str, &str)] = &[
    ("125605004", "Fracture of bone"),
    ("82271004", "Injury of head"),
    ("125667009", "Contusion"),
    ("312608009", "Laceration - injury"),
    ("5913000", "Fracture of neck of femur"),
];
/// (SNOMED CT id, term, dose, UCUM unit).
const MEDICATIONS: &[(&str, &str, f64, &str)] = &[
    ("387458008", "Aspirin", 300.0, "mg"),
    ("387517004", "Paracetamol", 1.0, "g"),
    ("387207008", "Ibuprofen", 400.0, "mg"),
    ("373529000", "Morphine", 5.0, "mg"),
    ("387362001", "Epinephrine", 1.0, "mg"),
    ("372897005", "Salbutamol", 5.0, "mg"),
    ("24099007", "Oxygen", 15.0, "L/min"),
    ("387404004", "Nitroglycerin", 400.0, "ug"),
    ("372487007", "Ondansetron", 4.0, "mg"),
    ("372890007", "Naloxone", 400.0, "ug"),
];
const PROCEDURES: &[(&str, &str)] = &[
    ("89666000", "Cardiopulmonary resuscitation"),
    ("268400002", "12 lead electrocardiogram"),
    ("225358003", "Wound care"),
    ("371907003", "Oxygen administration by nasal cannula"),
    ("40617009", "Artificial ventilation"),
];
const SAFEGUARDING: &[(&str, &str)] = &[
    ("225337009", "Suspected child at risk"),
    ("397940009", "Vulnerable adult"),
];
const PUBLIC_HEALTH: &[(&str, &str)] = &[
    ("15167005", "Alcohol abuse"),
    ("66214007", "Substance abuse"),
    ("35489007", "Depressive disorder"),
    ("77176002", "Smoker"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cad::{decode, is_snomed_id, is_valid_nhs_number};

    #[test]
    fn every_code_list_entry_is_a_valid_snomed_id() {
        let mut all: Vec<&str> = Vec::new();
        for list in [DIAGNOSES, INJURIES, PROCEDURES, SAFEGUARDING, PUBLIC_HEALTH] {
            all.extend(list.iter().map(|(c, _)| *c));
        }
        all.extend(MEDICATIONS.iter().map(|(c, ..)| *c));
        let bad: Vec<_> = all.into_iter().filter(|c| !is_snomed_id(c)).collect();
        assert!(bad.is_empty(), "{bad:?}");
    }

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
    fn nhs_numbers_start_with_9_and_pass_modulus_11() {
        let mut generator = Generator::new(9);
        for _ in 0..200 {
            let n = generator.nhs_number();
            assert!(n.starts_with('9') && is_valid_nhs_number(&n), "{n}");
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
