//! Pure format predicates of `cad.call.v1` codes: ODS codes, NHS numbers (modulus-11 check
//! digit), SNOMED CT identifiers (Verhoeff check digit) and UK postcodes. They answer yes or no
//! and never allocate an error; [`super`] turns a "no" into a `DecodeError` with a path.

/// An ODS code: `min..=max` upper-case ASCII letters or digits.
pub fn is_ods_code(code: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Ten digits whose tenth is the modulus-11 check digit of the first nine.
pub fn is_valid_nhs_number(n: &str) -> bool {
    let digits: Vec<u32> = n.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 10 || n.len() != 10 {
        return false;
    }
    nhs_check_digit(&digits[..9]) == Some(digits[9])
}

/// The modulus-11 check digit of nine NHS number digits; `None` when the remainder makes the
/// number unusable (check value 10).
pub fn nhs_check_digit(first_nine: &[u32]) -> Option<u32> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        check => Some(check),
    }
}

/// A SNOMED CT identifier: 6 to 18 digits, no leading zero, valid Verhoeff check digit.
pub fn is_snomed_id(code: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    if !(6..=18).contains(&code.len())
        || code.starts_with('0')
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let mut c = 0u8;
    for (i, b) in code.bytes().rev().enumerate() {
        c = D[c as usize][P[i % 8][(b - b'0') as usize] as usize];
    }
    c == 0
}

/// A full UK postcode in upper case, with or without the single space before the inward code:
/// `A9 9AA`, `A99 9AA`, `A9A 9AA`, `AA9 9AA`, `AA99 9AA`, `AA9A 9AA`.
pub fn is_uk_postcode(pc: &str) -> bool {
    let compact: Vec<u8> = match pc.split_once(' ') {
        Some((outward, inward)) if !inward.contains(' ') => {
            outward.bytes().chain(inward.bytes()).collect()
        }
        Some(_) => return false,
        None => pc.bytes().collect(),
    };
    if !(5..=7).contains(&compact.len()) {
        return false;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    if pc.contains(' ') && pc.split_once(' ').map(|(o, _)| o.len()) != Some(outward.len()) {
        return false;
    }
    let inward_ok = inward[0].is_ascii_digit()
        && inward[1].is_ascii_uppercase()
        && inward[2].is_ascii_uppercase();
    let outward_ok = match outward {
        [a, d] => a.is_ascii_uppercase() && d.is_ascii_digit(),
        [a, b, c] => {
            a.is_ascii_uppercase()
                && ((b.is_ascii_uppercase() && c.is_ascii_digit())
                    || (b.is_ascii_digit() && (c.is_ascii_digit() || c.is_ascii_uppercase())))
        }
        [a, b, c, d] => {
            a.is_ascii_uppercase()
                && b.is_ascii_uppercase()
                && c.is_ascii_digit()
                && (d.is_ascii_digit() || d.is_ascii_uppercase())
        }
        _ => false,
    };
    inward_ok && outward_ok
}
