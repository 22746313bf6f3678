//! The reference data behind synthetic calls: English ambulance trusts (ODS code, call-sign
//! prefix, triage system, postcode areas, receiving hospitals), AMPDS and Pathways codes with
//! their usual response category, names, and SNOMED CT concepts. Synthetic but plausible; a test
//! keeps every SNOMED CT id valid.

use ads_connector::cad::{ResponseCategory, TriageSystem};

/// An English ambulance service and the area it covers (synthetic but plausible details).
#[derive(Debug)]
pub(super) struct Trust {
    pub(super) ods: &'static str,
    pub(super) call_sign_prefix: &'static str,
    pub(super) triage: TriageSystem,
    pub(super) postcode_areas: &'static [&'static str],
    pub(super) hospitals: &'static [(&'static str, &'static str)],
}

pub(super) fn trust(ods: &str) -> &'static Trust {
    TRUSTS.iter().find(|t| t.ods == ods).unwrap_or(&TRUSTS[0])
}

pub(super) const TRUSTS: &[Trust] = &[
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
pub(super) const AMPDS: &[(&str, ResponseCategory)] = &[
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
pub(super) const PATHWAYS: &[(&str, ResponseCategory)] = &[
    ("Dx011", ResponseCategory::C1),
    ("Dx012", ResponseCategory::C2),
    ("Dx0121", ResponseCategory::C2),
    ("Dx013", ResponseCategory::C3),
    ("Dx014", ResponseCategory::C4),
    ("Dx015", ResponseCategory::C4),
    ("Dx05", ResponseCategory::C5),
    ("Dx06", ResponseCategory::C5),
];

pub(super) const FEMALE_NAMES: &[&str] = &[
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Margaret", "Susan", "Patricia", "Jean", "Emily",
    "Sophie", "Grace", "Aisha", "Fatima",
];
pub(super) const MALE_NAMES: &[&str] = &[
    "Oliver", "George", "Harry", "Jack", "Noah", "John", "David", "Michael", "Peter", "James",
    "William", "Thomas", "Mohammed", "Arjun",
];
pub(super) const NEUTRAL_NAMES: &[&str] = &["Alex", "Sam", "Charlie", "Jordan", "Robin"];
pub(super) const FAMILY_NAMES: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Patel", "Khan", "Begum", "O'Brien",
];

/// SNOMED CT concepts (id, term).
pub(super) const DIAGNOSES: &[(&str, &str)] = &[
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
pub(super) const INJURIES: &[(&str, &str)] = &[
    ("125605004", "Fracture of bone"),
    ("82271004", "Injury of head"),
    ("125667009", "Contusion"),
    ("312608009", "Laceration - injury"),
    ("5913000", "Fracture of neck of femur"),
];
/// (SNOMED CT id, term, dose, UCUM unit).
pub(super) const MEDICATIONS: &[(&str, &str, f64, &str)] = &[
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
pub(super) const PROCEDURES: &[(&str, &str)] = &[
    ("89666000", "Cardiopulmonary resuscitation"),
    ("268400002", "12 lead electrocardiogram"),
    ("225358003", "Wound care"),
    ("371907003", "Oxygen administration by nasal cannula"),
    ("40617009", "Artificial ventilation"),
];
pub(super) const SAFEGUARDING: &[(&str, &str)] = &[
    ("225337009", "Suspected child at risk"),
    ("397940009", "Vulnerable adult"),
];
pub(super) const PUBLIC_HEALTH: &[(&str, &str)] = &[
    ("15167005", "Alcohol abuse"),
    ("66214007", "Substance abuse"),
    ("35489007", "Depressive disorder"),
    ("77176002", "Smoker"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use ads_connector::cad::is_snomed_id;

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
}
