//! The life of a synthetic call, one event at a time: triage, call ended, hear-and-treat closed,
//! a resource mobilised, and each response advancing (arrived on scene, then left scene or clear,
//! arrived at hospital, handovers, clear). Every event happens after the previous snapshot and
//! only adds information; [`Generator::next_call`] and [`Generator::next_update`] drive it.

use chrono::{DateTime, Utc};
use rand::seq::SliceRandom;
use rand::Rng;

use ads_connector::cad::{
    CadCall, CallOrigin, Conveyance, ConveyanceOutcome, Destination, PatientContact, ResourceType,
    Response, ResponseCategory, ResponseTimes, TreatmentType, Triage, TriageSystem,
};

use super::data::{trust, AMPDS, PATHWAYS};
use super::{secs, Generator};

impl Generator {
    /// Applies the next event of the call's life; false when nothing is left to happen.
    pub(super) fn step(&mut self, call: &mut CadCall) -> bool {
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
                    disposition_code: code.to_string().into(),
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
                    disposition_code: code.to_string().into(),
                    symptom_group: Some(self.rng.gen_range(1000..1200).to_string().into()),
                    symptom_discriminator: Some(self.rng.gen_range(2000..5000).to_string().into()),
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
            call.cat1_early_prediction = Some("01".to_string().into());
        }
        call.times.dispatch_code_established = Some(t);
        // ARP: the clock starts at the earliest of the dispatch code and 240 s after connection.
        call.times.clock_start = Some(t.min(call.times.call_answered + secs(240)));
        let hear_and_treat = reporting == ResponseCategory::C5
            || (reporting >= ResponseCategory::C3 && self.rng.gen_bool(0.1));
        if hear_and_treat {
            call.treatment_type = Some(TreatmentType::HearAndTreat);
            call.stop_code = Some("01".to_string().into());
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
            call_sign: call_sign.into(),
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
                    ods_site: ods_site.to_string().into(),
                    name: Some(name.to_string().into()),
                }),
                conveyed_by: outcome.is_conveyed().then(|| call_sign.clone()),
            });
        }
        call.treatment_type = treatment_type(&call.patients);
        // A crew that attended and found no patient: the CAD records the attendance as see and
        // treat, except in a few calls whose record stays incomplete (the gap the connector's
        // data-quality feedback reports: `missing_ads_items` on the ack).
        if call.treatment_type.is_none() && call.patients.is_empty() && self.rng.gen_bool(0.97) {
            call.treatment_type = Some(TreatmentType::SeeAndTreat);
        }
        if conveys {
            call.responses[i].times.left_scene = Some(t);
        } else {
            call.responses[i].times.clear = Some(t);
        }
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
