//! `docs/configuration.md`, rendered from the [`Setting`] tables ([`super::SECTIONS`]) and the
//! environments' URLs ([`super::PRESETS`]).
//!
//! Contract: [`markdown`] is the whole file; `tests/configuration_docs.rs` fails when the file
//! differs and rewrites it when `ADS_UPDATE_DOCS=1`. [`render`] takes any list of sections, so a
//! table kept elsewhere (the coming `[schedule]`) joins the page by joining the list.

use std::fmt::Write as _;

use super::settings::{Absent, Section, Setting, PROD_ENVIRONMENT};
use super::{Preset, PRESETS, SECTIONS};

/// Where the file lives, from the workspace root.
pub const PATH: &str = "docs/configuration.md";

/// The command that rewrites the file.
pub const UPDATE_COMMAND: &str = "ADS_UPDATE_DOCS=1 cargo test --test configuration_docs";

/// `docs/configuration.md` as the code defines it.
pub fn markdown() -> String {
    render(SECTIONS, &PRESETS)
}

/// The page for `sections` (one table each, in order) and the environments' URLs.
pub fn render(sections: &[Section], presets: &[Preset]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "# Configuration\n\
         \n\
         <!-- Generated from the `Setting` tables in crates/connector/src/config/ (rendered by\n\
         \x20    config/docs.rs). Do not edit: change the table, then run\n\
         \x20    `{UPDATE_COMMAND}`. -->\n\
         \n\
         One TOML file (`deploy/config.example.toml` is a complete example) plus environment\n\
         overrides. `ads-connector check-config --config FILE` validates a file without connecting\n\
         and names the key and an example for every problem.\n\
         \n\
         * **Environment overrides.** Every key can be set by the variable `ADS__` followed by the\n\
         \x20 key in capitals with each `.` written `__`: `nhs_api.request.timeout_ms` is\n\
         \x20 `ADS__NHS_API__REQUEST__TIMEOUT_MS`. A variable wins over the file. Unknown keys are\n\
         \x20 rejected, in the file and in `ADS__` variables.\n\
         * **Secrets** are file paths, never values (the keys ending in `_file`); nothing reads them\n\
         \x20 at load time, and `kafka.properties` refuses them.\n\
         * **Defaults.** *required*: the key must be written; *required with …*: in that case; a\n\
         \x20 value: what a left-out key is; *none*: the feature is off. A default that depends on\n\
         \x20 `nhs_api.environment` says so: *from `nhs_api.environment`* (see\n\
         \x20 [Environments](#environments)), or *in `{PROD_ENVIRONMENT}`: …*.\n\
         * **Values** are TOML, and a string is shown without its quotes: the default `collection`\n\
         \x20 of `mapping.bundle_type` is written `bundle_type = \"collection\"` under `[mapping]`.\n"
    );
    for section in sections {
        let _ = write!(
            out,
            "\n## `[{}]`\n\n{}\n\n\
             | key | default | valid values | example | meaning |\n\
             |---|---|---|---|---|\n",
            section.name, section.about
        );
        for setting in section.settings {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | `{}` | {} |",
                setting.key,
                cell(&default_text(setting)),
                cell(setting.expected),
                cell(setting.example()),
                cell(setting.meaning),
            );
        }
    }
    out.push_str(
        "\n## Environments\n\n\
         `nhs_api.environment` and `nhs_api.paths` choose the URLs; `nhs_api.base_url` and\n\
         `nhs_api.token_url` override them, and `custom` has none (from `../shared/docs/nhs-api.md`\n\
         §1.2).\n\n\
         | environment | paths | API base | token URL (JWT `aud`) |\n\
         |---|---|---|---|\n",
    );
    for p in presets {
        let token = p
            .token_url
            .map_or_else(|| "none (open access)".to_owned(), |url| format!("`{url}`"));
        let _ = writeln!(
            out,
            "| `{}` | `{}` | `{}` | {} |",
            p.environment,
            p.paths,
            p.base_url,
            cell(&token)
        );
    }
    out
}

/// The default column: "required", a value (and the `prod` one), or what happens without one.
fn default_text(setting: &Setting) -> String {
    let base = match setting.default {
        Absent::Required => "required".to_owned(),
        Absent::RequiredWhen(case) => format!("required {case}"),
        Absent::Value(value) => format!("`{value}`"),
        Absent::Unset(text) => text.to_owned(),
    };
    match setting.prod_default {
        Some(prod) => format!("{base}; in `{PROD_ENVIRONMENT}`: `{prod}`"),
        None => base,
    }
}

/// Text made safe for a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_renders_one_row_per_key_with_the_prod_default_named() {
        const MODE: Setting = Setting {
            key: "schedule.mode",
            default: Absent::Value("continuous"),
            prod_default: Some("window"),
            expected: "`continuous` or `window`",
            example: Some("window"),
            meaning: "when submissions run",
        };
        let page = render(
            &[Section {
                name: "schedule",
                about: "When submissions run.",
                settings: &[MODE],
            }],
            &[],
        );
        assert!(
            page.contains("\n## `[schedule]`\n\nWhen submissions run.\n"),
            "{page}"
        );
        assert!(
            page.contains(
                "| `schedule.mode` | `continuous`; in `prod`: `window` | `continuous` or `window` \
                 | `window` | when submissions run |"
            ),
            "{page}"
        );
    }

    #[test]
    fn every_section_and_environment_is_on_the_page() {
        let page = markdown();
        for section in SECTIONS {
            assert!(page.contains(&format!("## `[{}]`", section.name)));
            for setting in section.settings {
                assert!(page.contains(&format!("| `{}` |", setting.key)));
            }
        }
        for p in PRESETS {
            assert!(page.contains(p.base_url));
        }
    }
}
