//! Synthetic patient contacts: demographics (a `9…` test-range NHS number and its verification
//! status, names, birth date, a postcode of the trust's area) when a response arrives on scene,
//! and the clinical record (observations, impressions, medications, procedures) written when it
//! leaves. Every value is drawn from the generator's seeded stream.

use chrono::{DateTime, Duration, Utc};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use ads_connector::cad::{
    nhs_check_digit, CadCall, ClinicalCode, Demographics, Dose, Gender, Medication,
    NhsNumberStatus, Observation, ObservationKind, PatientContact,
};

use super::data::{
    trust, Trust, DIAGNOSES, FAMILY_NAMES, FEMALE_NAMES, INJURIES, MALE_NAMES, MEDICATIONS,
    NEUTRAL_NAMES, PROCEDURES, PUBLIC_HEALTH, SAFEGUARDING,
};
use super::{secs, Generator};

impl Generator {
    pub(super) fn patient(&mut self, call: &CadCall, n: usize, call_sign: &str) -> PatientContact {
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
            contact_id: n.to_string().into(),
            call_signs: vec![call_sign.to_string().into()],
            demographics: Demographics {
                nhs_number: nhs_number.clone().map(Into::into),
                nhs_number_status,
                given_name: known.then(|| (*given.choose(&mut self.rng).expect("names")).into()),
                family_name: known.then(|| {
                    FAMILY_NAMES
                        .choose(&mut self.rng)
                        .map(|name| (*name).into())
                        .expect("names")
                }),
                birth_date: self.rng.gen_bool(0.95).then_some(birth_date),
                gender: Some(gender),
                postcode: self.rng.gen_bool(0.9).then(|| self.postcode(trust).into()),
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
    pub(super) fn clinical_record(
        &mut self,
        p: &mut PatientContact,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) {
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
            snomed: code.to_string().into(),
            display: Some(display.to_string().into()),
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
                snomed: code.to_string().into(),
                display: Some(display.to_string().into()),
                dose: Some(Dose {
                    value: amount,
                    unit: unit.to_string().into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use ads_connector::cad::is_valid_nhs_number;

    #[test]
    fn nhs_numbers_start_with_9_and_pass_modulus_11() {
        let mut generator = Generator::new(9);
        for _ in 0..200 {
            let n = generator.nhs_number();
            assert!(n.starts_with('9') && is_valid_nhs_number(&n), "{n}");
        }
    }
}
