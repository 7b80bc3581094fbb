-- The initial schema: the knowledge base (one table per terminology kind, link tables for list
-- references), then clinical, media and access tables.
-- Applied migrations are never edited; change the schema with a new migration.

CREATE TABLE tag (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE information_source_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE information_source (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE risk_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE risk (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    risk_type_id INTEGER REFERENCES risk_type(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX risk_risk_type_id_idx ON risk(risk_type_id);

CREATE TABLE first_name (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE last_name (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE center (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE endoscope_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE endoscopy_processor (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    image_width INTEGER,
    image_height INTEGER,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE endoscope (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    sn TEXT,
    center_id INTEGER REFERENCES center(id),
    endoscope_type_id INTEGER REFERENCES endoscope_type(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX endoscope_center_id_idx ON endoscope(center_id);
CREATE INDEX endoscope_endoscope_type_id_idx ON endoscope(endoscope_type_id);

CREATE TABLE numeric_value_distribution (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE single_categorical_value_distribution (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE multiple_categorical_value_distribution (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE date_value_distribution (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE gender (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    abbreviation TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE report_reader_flag (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    value TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE pdf_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    patient_info_line_id INTEGER REFERENCES report_reader_flag(id),
    endoscope_info_line_id INTEGER REFERENCES report_reader_flag(id),
    examiner_info_line_id INTEGER REFERENCES report_reader_flag(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX pdf_type_patient_info_line_id_idx ON pdf_type(patient_info_line_id);
CREATE INDEX pdf_type_endoscope_info_line_id_idx ON pdf_type(endoscope_info_line_id);
CREATE INDEX pdf_type_examiner_info_line_id_idx ON pdf_type(examiner_info_line_id);

CREATE TABLE unit (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    abbreviation TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE disease (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE disease_classification (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    disease_id INTEGER REFERENCES disease(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX disease_classification_disease_id_idx ON disease_classification(disease_id);

CREATE TABLE disease_classification_choice (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    disease_classification_id INTEGER REFERENCES disease_classification(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX disease_classification_choice_disease_classification_id_idx ON disease_classification_choice(disease_classification_id);

CREATE TABLE event (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE organ (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE contraindication (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE examination_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE examination (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE examination_time_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE examination_time (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE lab_value (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    abbreviation TEXT,
    default_unit_id INTEGER REFERENCES unit(id),
    default_numerical_value_distribution_id INTEGER REFERENCES numeric_value_distribution(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX lab_value_default_unit_id_idx ON lab_value(default_unit_id);
CREATE INDEX lab_value_default_numerical_value_distribution_id_idx ON lab_value(default_numerical_value_distribution_id);

CREATE TABLE patient_lab_sample_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE finding_intervention_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE finding_intervention (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE finding_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE finding (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE finding_classification_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE finding_classification_choice (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE finding_classification (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE examination_indication (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE examination_indication_classification (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE examination_indication_classification_choice (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    classification_id INTEGER REFERENCES examination_indication_classification(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX examination_indication_classification_choice_classification_id_idx ON examination_indication_classification_choice(classification_id);

CREATE TABLE medication (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    default_unit_id INTEGER REFERENCES unit(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX medication_default_unit_id_idx ON medication(default_unit_id);

CREATE TABLE medication_indication_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE medication_intake_time (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE medication_schedule (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    medication_id INTEGER REFERENCES medication(id),
    unit_id INTEGER REFERENCES unit(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX medication_schedule_medication_id_idx ON medication_schedule(medication_id);
CREATE INDEX medication_schedule_unit_id_idx ON medication_schedule(unit_id);

CREATE TABLE medication_indication (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    indication_type_id INTEGER REFERENCES medication_indication_type(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX medication_indication_indication_type_id_idx ON medication_indication(indication_type_id);

CREATE TABLE requirement_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE requirement_operator (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE requirement (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    unit_id INTEGER REFERENCES unit(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX requirement_unit_id_idx ON requirement(unit_id);

CREATE TABLE requirement_set_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE examination_requirement_set (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE requirement_set (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    requirement_set_type_id INTEGER REFERENCES requirement_set_type(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX requirement_set_requirement_set_type_id_idx ON requirement_set(requirement_set_type_id);

CREATE TABLE label_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE label (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    label_type_id INTEGER REFERENCES label_type(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX label_label_type_id_idx ON label(label_type_id);

CREATE TABLE label_set (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    version INTEGER,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE ai_model_type (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE video_segmentation_label (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    color TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE video_segmentation_label_set (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;

CREATE TABLE ai_model (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    name_de TEXT,
    name_en TEXT,
    description TEXT,
    description_de TEXT,
    description_en TEXT,
    model_type_id INTEGER REFERENCES ai_model_type(id),
    video_segmentation_labelset_id INTEGER REFERENCES video_segmentation_label_set(id),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object')
) STRICT;
CREATE INDEX ai_model_model_type_id_idx ON ai_model(model_type_id);
CREATE INDEX ai_model_video_segmentation_labelset_id_idx ON ai_model(video_segmentation_labelset_id);

CREATE TABLE information_source__information_source_types (
    source_id INTEGER NOT NULL REFERENCES information_source(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES information_source_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX information_source__information_source_types_target_idx ON information_source__information_source_types(target_id);

CREATE TABLE center__first_names (
    source_id INTEGER NOT NULL REFERENCES center(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES first_name(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX center__first_names_target_idx ON center__first_names(target_id);

CREATE TABLE center__last_names (
    source_id INTEGER NOT NULL REFERENCES center(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES last_name(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX center__last_names_target_idx ON center__last_names(target_id);

CREATE TABLE endoscopy_processor__centers (
    source_id INTEGER NOT NULL REFERENCES endoscopy_processor(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES center(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX endoscopy_processor__centers_target_idx ON endoscopy_processor__centers(target_id);

CREATE TABLE pdf_type__cut_off_above_lines (
    source_id INTEGER NOT NULL REFERENCES pdf_type(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES report_reader_flag(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX pdf_type__cut_off_above_lines_target_idx ON pdf_type__cut_off_above_lines(target_id);

CREATE TABLE pdf_type__cut_off_below_lines (
    source_id INTEGER NOT NULL REFERENCES pdf_type(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES report_reader_flag(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX pdf_type__cut_off_below_lines_target_idx ON pdf_type__cut_off_below_lines(target_id);

CREATE TABLE examination__examination_types (
    source_id INTEGER NOT NULL REFERENCES examination(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX examination__examination_types_target_idx ON examination__examination_types(target_id);

CREATE TABLE examination_time_type__examinations (
    source_id INTEGER NOT NULL REFERENCES examination_time_type(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX examination_time_type__examinations_target_idx ON examination_time_type__examinations(target_id);

CREATE TABLE examination_time__time_types (
    source_id INTEGER NOT NULL REFERENCES examination_time(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination_time_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX examination_time__time_types_target_idx ON examination_time__time_types(target_id);

CREATE TABLE finding_intervention__intervention_types (
    source_id INTEGER NOT NULL REFERENCES finding_intervention(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_intervention_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding_intervention__intervention_types_target_idx ON finding_intervention__intervention_types(target_id);

CREATE TABLE finding_intervention__required_lab_values (
    source_id INTEGER NOT NULL REFERENCES finding_intervention(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES lab_value(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding_intervention__required_lab_values_target_idx ON finding_intervention__required_lab_values(target_id);

CREATE TABLE finding_intervention__contraindications (
    source_id INTEGER NOT NULL REFERENCES finding_intervention(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES contraindication(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding_intervention__contraindications_target_idx ON finding_intervention__contraindications(target_id);

CREATE TABLE finding__finding_types (
    source_id INTEGER NOT NULL REFERENCES finding(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding__finding_types_target_idx ON finding__finding_types(target_id);

CREATE TABLE finding__examinations (
    source_id INTEGER NOT NULL REFERENCES finding(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding__examinations_target_idx ON finding__examinations(target_id);

CREATE TABLE finding__finding_interventions (
    source_id INTEGER NOT NULL REFERENCES finding(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_intervention(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding__finding_interventions_target_idx ON finding__finding_interventions(target_id);

CREATE TABLE finding_classification__classification_types (
    source_id INTEGER NOT NULL REFERENCES finding_classification(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_classification_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding_classification__classification_types_target_idx ON finding_classification__classification_types(target_id);

CREATE TABLE finding_classification__findings (
    source_id INTEGER NOT NULL REFERENCES finding_classification(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding_classification__findings_target_idx ON finding_classification__findings(target_id);

CREATE TABLE finding_classification__examinations (
    source_id INTEGER NOT NULL REFERENCES finding_classification(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding_classification__examinations_target_idx ON finding_classification__examinations(target_id);

CREATE TABLE finding_classification__finding_types (
    source_id INTEGER NOT NULL REFERENCES finding_classification(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding_classification__finding_types_target_idx ON finding_classification__finding_types(target_id);

CREATE TABLE finding_classification__choices (
    source_id INTEGER NOT NULL REFERENCES finding_classification(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_classification_choice(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX finding_classification__choices_target_idx ON finding_classification__choices(target_id);

CREATE TABLE examination_indication__examinations (
    source_id INTEGER NOT NULL REFERENCES examination_indication(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX examination_indication__examinations_target_idx ON examination_indication__examinations(target_id);

CREATE TABLE examination_indication__expected_interventions (
    source_id INTEGER NOT NULL REFERENCES examination_indication(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_intervention(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX examination_indication__expected_interventions_target_idx ON examination_indication__expected_interventions(target_id);

CREATE TABLE examination_indication_classification__examinations (
    source_id INTEGER NOT NULL REFERENCES examination_indication_classification(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX examination_indication_classification__examinations_target_idx ON examination_indication_classification__examinations(target_id);

CREATE TABLE examination_indication_classification__indications (
    source_id INTEGER NOT NULL REFERENCES examination_indication_classification(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination_indication(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX examination_indication_classification__indications_target_idx ON examination_indication_classification__indications(target_id);

CREATE TABLE medication_schedule__intake_times (
    source_id INTEGER NOT NULL REFERENCES medication_schedule(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES medication_intake_time(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX medication_schedule__intake_times_target_idx ON medication_schedule__intake_times(target_id);

CREATE TABLE medication_indication__medication_schedules (
    source_id INTEGER NOT NULL REFERENCES medication_indication(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES medication_schedule(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX medication_indication__medication_schedules_target_idx ON medication_indication__medication_schedules(target_id);

CREATE TABLE medication_indication__diseases (
    source_id INTEGER NOT NULL REFERENCES medication_indication(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES disease(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX medication_indication__diseases_target_idx ON medication_indication__diseases(target_id);

CREATE TABLE medication_indication__events (
    source_id INTEGER NOT NULL REFERENCES medication_indication(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES event(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX medication_indication__events_target_idx ON medication_indication__events(target_id);

CREATE TABLE medication_indication__disease_classification_choices (
    source_id INTEGER NOT NULL REFERENCES medication_indication(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES disease_classification_choice(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX medication_indication__disease_classification_choices_target_idx ON medication_indication__disease_classification_choices(target_id);

CREATE TABLE medication_indication__sources (
    source_id INTEGER NOT NULL REFERENCES medication_indication(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES information_source(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX medication_indication__sources_target_idx ON medication_indication__sources(target_id);

CREATE TABLE requirement__requirement_types (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES requirement_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__requirement_types_target_idx ON requirement__requirement_types(target_id);

CREATE TABLE requirement__operators (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES requirement_operator(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__operators_target_idx ON requirement__operators(target_id);

CREATE TABLE requirement__examinations (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__examinations_target_idx ON requirement__examinations(target_id);

CREATE TABLE requirement__examination_indications (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination_indication(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__examination_indications_target_idx ON requirement__examination_indications(target_id);

CREATE TABLE requirement__diseases (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES disease(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__diseases_target_idx ON requirement__diseases(target_id);

CREATE TABLE requirement__disease_classification_choices (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES disease_classification_choice(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__disease_classification_choices_target_idx ON requirement__disease_classification_choices(target_id);

CREATE TABLE requirement__events (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES event(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__events_target_idx ON requirement__events(target_id);

CREATE TABLE requirement__lab_values (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES lab_value(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__lab_values_target_idx ON requirement__lab_values(target_id);

CREATE TABLE requirement__findings (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__findings_target_idx ON requirement__findings(target_id);

CREATE TABLE requirement__finding_classifications (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_classification(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__finding_classifications_target_idx ON requirement__finding_classifications(target_id);

CREATE TABLE requirement__finding_classification_choices (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_classification_choice(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__finding_classification_choices_target_idx ON requirement__finding_classification_choices(target_id);

CREATE TABLE requirement__finding_interventions (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES finding_intervention(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__finding_interventions_target_idx ON requirement__finding_interventions(target_id);

CREATE TABLE requirement__risks (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES risk(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__risks_target_idx ON requirement__risks(target_id);

CREATE TABLE requirement__risk_types (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES risk_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__risk_types_target_idx ON requirement__risk_types(target_id);

CREATE TABLE requirement__medication_indications (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES medication_indication(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__medication_indications_target_idx ON requirement__medication_indications(target_id);

CREATE TABLE requirement__medication_indication_types (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES medication_indication_type(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__medication_indication_types_target_idx ON requirement__medication_indication_types(target_id);

CREATE TABLE requirement__medication_schedules (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES medication_schedule(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__medication_schedules_target_idx ON requirement__medication_schedules(target_id);

CREATE TABLE requirement__medications (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES medication(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__medications_target_idx ON requirement__medications(target_id);

CREATE TABLE requirement__medication_intake_times (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES medication_intake_time(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__medication_intake_times_target_idx ON requirement__medication_intake_times(target_id);

CREATE TABLE requirement__genders (
    source_id INTEGER NOT NULL REFERENCES requirement(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES gender(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement__genders_target_idx ON requirement__genders(target_id);

CREATE TABLE examination_requirement_set__examinations (
    source_id INTEGER NOT NULL REFERENCES examination_requirement_set(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX examination_requirement_set__examinations_target_idx ON examination_requirement_set__examinations(target_id);

CREATE TABLE requirement_set__requirements (
    source_id INTEGER NOT NULL REFERENCES requirement_set(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES requirement(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement_set__requirements_target_idx ON requirement_set__requirements(target_id);

CREATE TABLE requirement_set__links_to_sets (
    source_id INTEGER NOT NULL REFERENCES requirement_set(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES requirement_set(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement_set__links_to_sets_target_idx ON requirement_set__links_to_sets(target_id);

CREATE TABLE requirement_set__information_sources (
    source_id INTEGER NOT NULL REFERENCES requirement_set(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES information_source(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement_set__information_sources_target_idx ON requirement_set__information_sources(target_id);

CREATE TABLE requirement_set__tags (
    source_id INTEGER NOT NULL REFERENCES requirement_set(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES tag(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement_set__tags_target_idx ON requirement_set__tags(target_id);

CREATE TABLE requirement_set__reqset_exam_links (
    source_id INTEGER NOT NULL REFERENCES requirement_set(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES examination_requirement_set(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX requirement_set__reqset_exam_links_target_idx ON requirement_set__reqset_exam_links(target_id);

CREATE TABLE label_set__labels (
    source_id INTEGER NOT NULL REFERENCES label_set(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES label(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX label_set__labels_target_idx ON label_set__labels(target_id);

CREATE TABLE video_segmentation_label_set__labels (
    source_id INTEGER NOT NULL REFERENCES video_segmentation_label_set(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES video_segmentation_label(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) STRICT;
CREATE INDEX video_segmentation_label_set__labels_target_idx ON video_segmentation_label_set__labels(target_id);

-- Image regions of an endoscopy processor's output: where the endoscope image is, and where the
-- processor burns patient and device information into the picture.
CREATE TABLE endoscopy_processor_region (
    id INTEGER PRIMARY KEY,
    endoscopy_processor_id INTEGER NOT NULL REFERENCES endoscopy_processor(id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (name <> ''),
    kind TEXT NOT NULL CHECK (kind IN ('endoscope_image', 'patient_information', 'device_information')),
    x INTEGER NOT NULL CHECK (x >= 0),
    y INTEGER NOT NULL CHECK (y >= 0),
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    UNIQUE (endoscopy_processor_id, name)
) STRICT;

CREATE TABLE examiner (
    id INTEGER PRIMARY KEY,
    center_id INTEGER NOT NULL REFERENCES center(id),
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX examiner_center_id_idx ON examiner(center_id);

-- Pseudonymised patient: nothing here identifies a person. Identifying data lives in patient_identity.
CREATE TABLE patient (
    id INTEGER PRIMARY KEY,
    pseudonym TEXT NOT NULL UNIQUE CHECK (pseudonym <> ''),
    center_id INTEGER NOT NULL REFERENCES center(id),
    gender_id INTEGER REFERENCES gender(id),
    birth_year INTEGER CHECK (birth_year BETWEEN 1850 AND 2200),
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX patient_center_id_idx ON patient(center_id);

-- Patient-identifying data (names, birth date, hospital id, free text), kept apart so that it can be
-- encrypted, access-controlled and left out of research exports on its own.
CREATE TABLE patient_identity (
    patient_id INTEGER PRIMARY KEY REFERENCES patient(id) ON DELETE CASCADE,
    first_name TEXT,
    last_name TEXT,
    date_of_birth TEXT,
    external_id TEXT,
    notes TEXT,
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE patient_examination (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    examination_id INTEGER NOT NULL REFERENCES examination(id),
    center_id INTEGER NOT NULL REFERENCES center(id),
    examiner_id INTEGER REFERENCES examiner(id),
    date TEXT,
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX patient_examination_patient_id_idx ON patient_examination(patient_id);
CREATE INDEX patient_examination_center_date_idx ON patient_examination(center_id, date);
CREATE INDEX patient_examination_examination_date_idx ON patient_examination(examination_id, date);
CREATE INDEX patient_examination_date_idx ON patient_examination(date);

CREATE TABLE patient_examination_indication (
    patient_examination_id INTEGER NOT NULL REFERENCES patient_examination(id) ON DELETE CASCADE,
    examination_indication_id INTEGER NOT NULL REFERENCES examination_indication(id),
    classification_choice_id INTEGER REFERENCES examination_indication_classification_choice(id),
    PRIMARY KEY (patient_examination_id, examination_indication_id)
) STRICT;

CREATE TABLE patient_finding (
    id INTEGER PRIMARY KEY,
    patient_examination_id INTEGER NOT NULL REFERENCES patient_examination(id) ON DELETE CASCADE,
    finding_id INTEGER NOT NULL REFERENCES finding(id),
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX patient_finding_patient_examination_id_idx ON patient_finding(patient_examination_id);
CREATE INDEX patient_finding_finding_id_idx ON patient_finding(finding_id);

-- One choice per classification per finding.
CREATE TABLE patient_finding_classification (
    patient_finding_id INTEGER NOT NULL REFERENCES patient_finding(id) ON DELETE CASCADE,
    finding_classification_id INTEGER NOT NULL REFERENCES finding_classification(id),
    finding_classification_choice_id INTEGER NOT NULL REFERENCES finding_classification_choice(id),
    PRIMARY KEY (patient_finding_id, finding_classification_id)
) STRICT;

CREATE TABLE patient_finding_intervention (
    patient_finding_id INTEGER NOT NULL REFERENCES patient_finding(id) ON DELETE CASCADE,
    finding_intervention_id INTEGER NOT NULL REFERENCES finding_intervention(id),
    state TEXT CHECK (state IN ('planned', 'performed', 'not_performed', 'failed')),
    date TEXT,
    PRIMARY KEY (patient_finding_id, finding_intervention_id)
) STRICT;

CREATE TABLE ai_model_version (
    id INTEGER PRIMARY KEY,
    ai_model_id INTEGER NOT NULL REFERENCES ai_model(id),
    version TEXT NOT NULL CHECK (version <> ''),
    label_set_id INTEGER REFERENCES label_set(id),
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    UNIQUE (ai_model_id, version)
) STRICT;

CREATE TABLE video (
    id INTEGER PRIMARY KEY,
    center_id INTEGER NOT NULL REFERENCES center(id),
    endoscopy_processor_id INTEGER REFERENCES endoscopy_processor(id),
    patient_examination_id INTEGER REFERENCES patient_examination(id),
    sha256 TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64),
    size_bytes INTEGER CHECK (size_bytes >= 0),
    state TEXT NOT NULL CHECK (state IN ('uploaded', 'probed', 'anonymised', 'frames_extracted', 'predicted', 'validated', 'failed')),
    state_detail TEXT,
    state_changed_at TEXT NOT NULL,
    container TEXT,
    codec TEXT,
    width INTEGER CHECK (width > 0),
    height INTEGER CHECK (height > 0),
    fps REAL CHECK (fps > 0),
    duration_s REAL CHECK (duration_s >= 0),
    frame_count INTEGER CHECK (frame_count >= 0),
    rotation INTEGER CHECK (rotation IN (0, 90, 180, 270)),
    raw_key TEXT,
    anonymised_key TEXT,
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX video_center_id_idx ON video(center_id);
CREATE INDEX video_patient_examination_id_idx ON video(patient_examination_id);
CREATE INDEX video_state_idx ON video(state);

-- The history of a video's processing state: every transition, with the reason for failures.
CREATE TABLE video_state_event (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES video(id) ON DELETE CASCADE,
    from_state TEXT,
    to_state TEXT NOT NULL,
    detail TEXT,
    at TEXT NOT NULL
) STRICT;
CREATE INDEX video_state_event_video_id_idx ON video_state_event(video_id);

-- Extracted frames, one row per video and source: frames first_frame, first_frame + step, ... stored
-- under storage_prefix, rather than one row per frame.
CREATE TABLE video_frame_set (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES video(id) ON DELETE CASCADE,
    source TEXT NOT NULL CHECK (source IN ('raw', 'anonymised')),
    first_frame INTEGER NOT NULL CHECK (first_frame >= 0),
    frame_count INTEGER NOT NULL CHECK (frame_count >= 0),
    step INTEGER NOT NULL CHECK (step >= 1),
    format TEXT NOT NULL CHECK (format IN ('jpeg', 'png')),
    storage_prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (video_id, source)
) STRICT;

CREATE TABLE label_video_segment (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES video(id) ON DELETE CASCADE,
    label_id INTEGER NOT NULL REFERENCES label(id),
    start_frame INTEGER NOT NULL CHECK (start_frame >= 0),
    end_frame INTEGER NOT NULL,
    information_source_id INTEGER REFERENCES information_source(id),
    ai_model_version_id INTEGER REFERENCES ai_model_version(id),
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (end_frame >= start_frame)
) STRICT;
CREATE INDEX label_video_segment_video_label_idx ON label_video_segment(video_id, label_id);
CREATE INDEX label_video_segment_model_version_idx ON label_video_segment(ai_model_version_id);

CREATE TABLE report_document (
    id INTEGER PRIMARY KEY,
    center_id INTEGER NOT NULL REFERENCES center(id),
    patient_examination_id INTEGER REFERENCES patient_examination(id),
    pdf_type_id INTEGER REFERENCES pdf_type(id),
    sha256 TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64),
    size_bytes INTEGER CHECK (size_bytes >= 0),
    state TEXT NOT NULL CHECK (state IN ('uploaded', 'text_extracted', 'anonymised', 'failed')),
    state_detail TEXT,
    raw_key TEXT,
    anonymised_text TEXT,
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX report_document_center_id_idx ON report_document(center_id);
CREATE INDEX report_document_patient_examination_id_idx ON report_document(patient_examination_id);

-- API tokens: only the SHA-256 of a token is stored; the token itself is shown once at creation.
CREATE TABLE api_token (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL CHECK (name <> ''),
    role TEXT NOT NULL CHECK (role IN ('admin', 'data_manager', 'annotator', 'researcher', 'service')),
    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
) STRICT;
