//! The terminology kinds the registry knows: one table per kind, keyed by a unique `name`, with
//! translations, a few typed columns, single references (a `<field>_id` column) and list references (a
//! link table `<kind>__<field>` with `source_id`, `target_id`, `position`).
//!
//! This list is the one description of the knowledge-base tables. The loader of our own knowledge base,
//! the EndoregDB importer, the terminology API and backup all walk it; a test checks it against the
//! tables the migrations create, on both backends.
//!
//! Kinds are listed so that every single reference points at a kind listed earlier (rows can then be
//! written in one pass, in this order). List references may point anywhere, the kind itself included,
//! because links are written after all rows.

use crate::db::schema::ColType;

/// A field stored in its own typed column.
#[derive(Debug, Clone, Copy)]
pub struct TypedField {
    pub field: &'static str,
    pub ty: ColType,
}

/// A reference by name to another kind's entry.
#[derive(Debug, Clone, Copy)]
pub struct RefField {
    pub field: &'static str,
    pub target: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// The kind's name: its table, and its key in knowledge-base files.
    pub name: &'static str,
    /// The EndoregDB base-data directory it is imported from, relative to the tree.
    pub endoreg_dir: Option<&'static str>,
    pub typed: &'static [TypedField],
    /// Plain fields that are known but kept in the `attributes` JSON column rather than a column of their
    /// own (values the registry stores and serves but does not interpret).
    pub attributes: &'static [&'static str],
    pub refs: &'static [RefField],
    pub links: &'static [RefField],
    /// Whether entries carry image `regions` (endoscopy processors).
    pub has_regions: bool,
}

impl Kind {
    const fn new(name: &'static str) -> Self {
        Kind { name, endoreg_dir: None, typed: &[], attributes: &[], refs: &[], links: &[], has_regions: false }
    }
    const fn dir(mut self, dir: &'static str) -> Self {
        self.endoreg_dir = Some(dir);
        self
    }
    const fn typed(mut self, typed: &'static [TypedField]) -> Self {
        self.typed = typed;
        self
    }
    const fn attrs(mut self, attributes: &'static [&'static str]) -> Self {
        self.attributes = attributes;
        self
    }
    const fn refs(mut self, refs: &'static [RefField]) -> Self {
        self.refs = refs;
        self
    }
    const fn links(mut self, links: &'static [RefField]) -> Self {
        self.links = links;
        self
    }
    const fn regions(mut self) -> Self {
        self.has_regions = true;
        self
    }

    /// The column holding a single reference.
    pub fn ref_column(field: &str) -> String {
        format!("{field}_id")
    }

    /// The link table of a list reference.
    pub fn link_table(&self, field: &str) -> String {
        format!("{}__{field}", self.name)
    }

    pub fn find_ref(&self, field: &str) -> Option<&RefField> {
        self.refs.iter().find(|r| r.field == field)
    }

    pub fn find_link(&self, field: &str) -> Option<&RefField> {
        self.links.iter().find(|r| r.field == field)
    }

    pub fn find_typed(&self, field: &str) -> Option<&TypedField> {
        self.typed.iter().find(|t| t.field == field)
    }
}

/// Text columns every kind has besides `name`.
pub const TRANSLATIONS: [&str; 5] = ["name_de", "name_en", "description", "description_de", "description_en"];

const fn t(field: &'static str, ty: ColType) -> TypedField {
    TypedField { field, ty }
}

const fn r(field: &'static str, target: &'static str) -> RefField {
    RefField { field, target }
}

pub static KINDS: &[Kind] = &[
    Kind::new("tag").dir("tag"),
    Kind::new("information_source_type").dir("information_source_type"),
    Kind::new("information_source")
        .dir("information_source")
        .attrs(&["date"])
        .links(&[r("information_source_types", "information_source_type")]),
    Kind::new("risk_type").dir("risk_type"),
    Kind::new("risk").dir("risk").attrs(&["risk_value"]).refs(&[r("risk_type", "risk_type")]),
    Kind::new("first_name").dir("names_first"),
    Kind::new("last_name").dir("names_last"),
    Kind::new("center").dir("center").links(&[r("first_names", "first_name"), r("last_names", "last_name")]),
    Kind::new("endoscope_type").dir("endoscope_type"),
    Kind::new("endoscopy_processor")
        .dir("endoscopy_processor")
        .typed(&[t("image_width", ColType::Int), t("image_height", ColType::Int)])
        .links(&[r("centers", "center")])
        .regions(),
    Kind::new("endoscope")
        .dir("endoscope")
        .typed(&[t("sn", ColType::Text)])
        .refs(&[r("center", "center"), r("endoscope_type", "endoscope_type")]),
    Kind::new("numeric_value_distribution").dir("distribution/numeric").attrs(&["distribution_type", "min_descriptor", "max_descriptor"]),
    Kind::new("single_categorical_value_distribution").dir("distribution/single_categorical").attrs(&["categories"]),
    Kind::new("multiple_categorical_value_distribution").dir("distribution/multiple_categorical").attrs(&[
        "categories",
        "min_count",
        "max_count",
        "count_distribution_type",
        "count_mean",
        "count_std_dev",
    ]),
    Kind::new("date_value_distribution").dir("distribution/date").attrs(&[
        "distribution_type",
        "mode",
        "timedelta_days_min",
        "timedelta_days_max",
    ]),
    Kind::new("gender").dir("gender").typed(&[t("abbreviation", ColType::Text)]),
    Kind::new("report_reader_flag").dir("report_reader_flag").typed(&[t("value", ColType::Text)]),
    Kind::new("pdf_type")
        .dir("pdf_type")
        .refs(&[
            r("patient_info_line", "report_reader_flag"),
            r("endoscope_info_line", "report_reader_flag"),
            r("examiner_info_line", "report_reader_flag"),
        ])
        .links(&[r("cut_off_above_lines", "report_reader_flag"), r("cut_off_below_lines", "report_reader_flag")]),
    Kind::new("unit").dir("unit").typed(&[t("abbreviation", ColType::Text)]),
    Kind::new("disease").dir("disease"),
    Kind::new("disease_classification").dir("disease_classification").refs(&[r("disease", "disease")]),
    Kind::new("disease_classification_choice")
        .dir("disease_classification_choice")
        .refs(&[r("disease_classification", "disease_classification")]),
    Kind::new("event").dir("event"),
    Kind::new("organ").dir("organ"),
    Kind::new("contraindication").dir("contraindication"),
    Kind::new("examination_type").dir("examination/type"),
    Kind::new("examination").dir("examination/examinations").links(&[r("examination_types", "examination_type")]),
    Kind::new("examination_time_type").dir("examination/time-type").links(&[r("examinations", "examination")]),
    Kind::new("examination_time")
        .dir("examination/time")
        .attrs(&["start_time", "end_time"])
        .links(&[r("time_types", "examination_time_type")]),
    Kind::new("lab_value")
        .dir("lab_value")
        .typed(&[t("abbreviation", ColType::Text)])
        .attrs(&[
            "numeric_precision",
            "default_normal_range",
            "normal_range_age_dependent",
            "normal_range_gender_dependent",
            "normal_range_special_case",
            "bound_adjustment_factor",
        ])
        .refs(&[r("default_unit", "unit"), r("default_numerical_value_distribution", "numeric_value_distribution")]),
    Kind::new("patient_lab_sample_type").dir("patient_lab_sample_type"),
    Kind::new("finding_intervention_type").dir("finding_intervention_type"),
    Kind::new("finding_intervention").dir("finding_intervention").links(&[
        r("intervention_types", "finding_intervention_type"),
        r("required_lab_values", "lab_value"),
        r("contraindications", "contraindication"),
    ]),
    Kind::new("finding_type").dir("finding_type"),
    Kind::new("finding").dir("finding").links(&[
        r("finding_types", "finding_type"),
        r("examinations", "examination"),
        r("finding_interventions", "finding_intervention"),
    ]),
    Kind::new("finding_classification_type").dir("finding_classification_type"),
    Kind::new("finding_classification_choice").dir("finding_classification_choice").attrs(&["numerical_descriptors", "subcategories"]),
    Kind::new("finding_classification").dir("finding_classification").links(&[
        r("classification_types", "finding_classification_type"),
        r("findings", "finding"),
        r("examinations", "examination"),
        r("finding_types", "finding_type"),
        r("choices", "finding_classification_choice"),
    ]),
    Kind::new("examination_indication")
        .dir("examination_indication")
        .links(&[r("examinations", "examination"), r("expected_interventions", "finding_intervention")]),
    Kind::new("examination_indication_classification")
        .dir("examination_indication_classification")
        .links(&[r("examinations", "examination"), r("indications", "examination_indication")]),
    Kind::new("examination_indication_classification_choice")
        .dir("examination_indication_classification_choice")
        .attrs(&["subcategories", "numerical_descriptors"])
        .refs(&[r("classification", "examination_indication_classification")]),
    Kind::new("medication")
        .dir("medication")
        .attrs(&[
            "adapt_to_renal_function",
            "adapt_to_hepatic_function",
            "adapt_to_indication",
            "adapt_to_age",
            "adapt_to_weight",
            "adapt_to_risk",
        ])
        .refs(&[r("default_unit", "unit")]),
    Kind::new("medication_indication_type").dir("medication_indication_type"),
    Kind::new("medication_intake_time").dir("medication_intake_time").attrs(&["repeats", "time"]),
    Kind::new("medication_schedule")
        .dir("medication_schedule")
        .attrs(&["therapy_duration_d", "dose"])
        .refs(&[r("medication", "medication"), r("unit", "unit")])
        .links(&[r("intake_times", "medication_intake_time")]),
    Kind::new("medication_indication").dir("medication_indication").refs(&[r("indication_type", "medication_indication_type")]).links(&[
        r("medication_schedules", "medication_schedule"),
        r("diseases", "disease"),
        r("events", "event"),
        r("disease_classification_choices", "disease_classification_choice"),
        r("sources", "information_source"),
    ]),
    Kind::new("requirement_type").dir("requirement_type"),
    Kind::new("requirement_operator").dir("requirement_operator").attrs(&["evaluation_function_name"]),
    Kind::new("requirement")
        .dir("requirement")
        .attrs(&["numeric_value", "numeric_value_min", "numeric_value_max", "string_value", "string_values"])
        .refs(&[r("unit", "unit")])
        .links(&[
            r("requirement_types", "requirement_type"),
            r("operators", "requirement_operator"),
            r("examinations", "examination"),
            r("examination_indications", "examination_indication"),
            r("diseases", "disease"),
            r("disease_classification_choices", "disease_classification_choice"),
            r("events", "event"),
            r("lab_values", "lab_value"),
            r("findings", "finding"),
            r("finding_classifications", "finding_classification"),
            r("finding_classification_choices", "finding_classification_choice"),
            r("finding_interventions", "finding_intervention"),
            r("risks", "risk"),
            r("risk_types", "risk_type"),
            r("medication_indications", "medication_indication"),
            r("medication_indication_types", "medication_indication_type"),
            r("medication_schedules", "medication_schedule"),
            r("medications", "medication"),
            r("medication_intake_times", "medication_intake_time"),
            r("genders", "gender"),
        ]),
    Kind::new("requirement_set_type").dir("requirement_set_type"),
    Kind::new("examination_requirement_set").dir("examination_requirement_set").links(&[r("examinations", "examination")]),
    Kind::new("requirement_set").dir("requirement_set").refs(&[r("requirement_set_type", "requirement_set_type")]).links(&[
        r("requirements", "requirement"),
        r("links_to_sets", "requirement_set"),
        r("information_sources", "information_source"),
        r("tags", "tag"),
        r("reqset_exam_links", "examination_requirement_set"),
    ]),
    Kind::new("label_type").dir("ai_model_label/label-type"),
    Kind::new("label").dir("ai_model_label/label").refs(&[r("label_type", "label_type")]),
    Kind::new("label_set").dir("ai_model_label/label-set").typed(&[t("version", ColType::Int)]).links(&[r("labels", "label")]),
    Kind::new("ai_model_type").dir("ai_model_type"),
    Kind::new("video_segmentation_label").dir("ai_model_video_segmentation_label").typed(&[t("color", ColType::Text)]),
    Kind::new("video_segmentation_label_set").dir("ai_model_video_segmentation_labelset").links(&[r("labels", "video_segmentation_label")]),
    Kind::new("ai_model")
        .dir("ai_model")
        .attrs(&["model_subtype"])
        .refs(&[r("model_type", "ai_model_type"), r("video_segmentation_labelset", "video_segmentation_label_set")]),
];

/// EndoregDB's model metadata directory. Its entries (a model, a version, the label set that version
/// predicts) are model versions, the table the inference worker registers its models in; that table is
/// keyed by model and version rather than by name, so it is no kind of this list.
pub const MODEL_META_DIR: &str = "ai_model_meta";
/// Where model metadata goes.
pub const MODEL_VERSION_TABLE: &str = "ai_model_version";

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The kinds whose names (and nothing else) identify an image region's purpose on a processor.
pub const REGION_KINDS: [&str; 3] = ["endoscope_image", "patient_information", "device_information"];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn single_references_point_at_kinds_listed_earlier() {
        let mut seen = HashSet::new();
        for k in KINDS {
            for r in k.refs {
                assert!(seen.contains(r.target), "{}.{} -> {} is not listed earlier", k.name, r.field, r.target);
            }
            assert!(seen.insert(k.name), "{} listed twice", k.name);
        }
    }

    #[test]
    fn list_references_point_at_known_kinds() {
        for k in KINDS {
            for l in k.links {
                assert!(kind(l.target).is_some(), "{}.{} -> {}", k.name, l.field, l.target);
            }
        }
    }

    #[test]
    fn no_field_is_declared_twice() {
        for k in KINDS {
            let mut fields = HashSet::new();
            let all = k
                .typed
                .iter()
                .map(|t| t.field)
                .chain(k.attributes.iter().copied())
                .chain(k.refs.iter().map(|r| r.field))
                .chain(k.links.iter().map(|r| r.field))
                .chain(["name"])
                .chain(TRANSLATIONS.iter().copied());
            for f in all {
                assert!(fields.insert(f), "{}.{f} declared twice", k.name);
            }
        }
    }

    #[test]
    fn endoreg_directories_are_distinct() {
        let mut dirs = HashSet::new();
        for k in KINDS {
            if let Some(d) = k.endoreg_dir {
                assert!(dirs.insert(d), "{d}");
            }
        }
    }
}
