#!/usr/bin/env python3
"""Independent reference counter for the EndoregDB v0.7.0 base data tree.

Written from a reading of EndoregDB v0.7.0's loaders; shares no code with the
endoreg importer. It reproduces which files `manage.py load_base_db_data`
(EndoregDB v0.7.0) reads, counts the entries, and reports

  * dangling_reference: a foreign-key / many-to-many value (a natural key =
    `name`) for which no entry with that name exists in the directory the
    target model is loaded from (after reading the WHOLE tree, i.e. load order
    does not matter here);
  * duplicate_name: the second and later definitions of a `name` inside one
    model's directory;
  * skipped_directory: a directory of the tree that holds *.yaml files of its
    own but is read by no step of the plan (walked independently of the plan,
    so a directory nobody thought of is still named).

Beyond load_base_db_data, the plan has one more step: the model metadata
(ModelMeta, directory ai_model_meta). EndoregDB v0.7.0 (its data is that of the
endoreg-db 0.8.1 wheel) defines ModelMeta and ships its YAML, but the ModelMeta
step of load_ai_model_data is commented out; endoreg imports it as model
versions. A ModelMeta is keyed by (model, version), not by name: `model` names
an AiModel and defaults to the metadata's own name, as EndoregDB's
create_multilabel_model_meta does (meta_name=model_name); `labelset` names a
LabelSet. A ModelMeta with a dangling reference is not imported at all (the
detail says so); of one defined twice the later definition counts.

"created" is what an import into an empty database creates per directory:
the distinct names (ModelMeta: the distinct (model, version) pairs with a
version and a labelset whose references all exist).

Usage:  python3 endoreg_reference_count.py TREE  > endoreg-v0.7.0-expected.json
stdout: JSON {"counts": {DIR: N}, "created": {DIR: N},
              "problems": [{file, entry, kind, detail}]}
stderr: human summary (plus notes on EndoregDB load-order failures, which are
        informational only and not part of the JSON).

Requires Python 3.8+ and PyYAML (yaml.safe_load, as EndoregDB uses).
"""

import json
import os
import sys
from collections import Counter, OrderedDict

import yaml

# ---------------------------------------------------------------------------
# Load plan of load_base_db_data, in execution order.
# (command, model, directory relative to the tree, [(fk_field, target_model)])
# The fk pairs are what zip(foreign_keys, foreign_key_models) yields, i.e.
# already truncated to the shorter list (Finding: 3 fields, 5 models).
# ---------------------------------------------------------------------------
PLAN = [
    ("load_tag_data", "Tag", "tag", []),
    ("load_information_source", "InformationSourceType", "information_source_type", []),
    ("load_information_source", "InformationSource", "information_source",
     [("information_source_types", "InformationSourceType")]),
    ("load_risk_data", "RiskType", "risk_type", []),
    ("load_risk_data", "Risk", "risk", [("risk_type", "RiskType")]),
    ("load_center_data", "FirstName", "names_first", []),
    ("load_center_data", "LastName", "names_last", []),
    ("load_center_data", "Center", "center",
     [("first_names", "FirstName"), ("last_names", "LastName")]),
    ("load_endoscope_data", "EndoscopeType", "endoscope_type", []),
    ("load_endoscope_data", "EndoscopyProcessor", "endoscopy_processor",
     [("centers", "Center")]),
    ("load_endoscope_data", "Endoscope", "endoscope",
     [("center", "Center"), ("endoscope_type", "EndoscopeType")]),
    ("load_distribution_data", "NumericValueDistribution", "distribution/numeric", []),
    ("load_distribution_data", "SingleCategoricalValueDistribution",
     "distribution/single_categorical", []),
    ("load_distribution_data", "MultipleCategoricalValueDistribution",
     "distribution/multiple_categorical", []),
    ("load_distribution_data", "DateValueDistribution", "distribution/date", []),
    ("load_gender_data", "Gender", "gender", []),
    ("load_report_reader_flag_data", "ReportReaderFlag", "report_reader_flag", []),
    ("load_pdf_type_data", "PdfType", "pdf_type",
     [("patient_info_line", "ReportReaderFlag"),
      ("endoscope_info_line", "ReportReaderFlag"),
      ("examiner_info_line", "ReportReaderFlag"),
      ("cut_off_below_lines", "ReportReaderFlag"),
      ("cut_off_above_lines", "ReportReaderFlag")]),
    ("load_unit_data", "Unit", "unit", []),
    ("load_disease_data", "Disease", "disease", []),
    ("load_disease_data", "DiseaseClassification", "disease_classification",
     [("disease", "Disease")]),
    ("load_disease_data", "DiseaseClassificationChoice", "disease_classification_choice",
     [("disease_classification", "DiseaseClassification")]),
    ("load_event_data", "Event", "event", []),
    ("load_organ_data", "Organ", "organ", []),
    ("load_contraindication_data", "Contraindication", "contraindication", []),
    ("load_examination_data", "ExaminationType", "examination/type", []),
    ("load_examination_data", "Examination", "examination/examinations",
     [("examination_types", "ExaminationType")]),
    ("load_examination_data", "ExaminationTimeType", "examination/time-type",
     [("examinations", "Examination")]),
    ("load_examination_data", "ExaminationTime", "examination/time",
     [("time_types", "ExaminationTimeType")]),
    ("load_lab_value_data", "LabValue", "lab_value",
     [("default_unit", "Unit"),
      ("default_numerical_value_distribution", "NumericValueDistribution")]),
    ("load_lab_value_data", "PatientLabSampleType", "patient_lab_sample_type", []),
    ("load_finding_data", "FindingInterventionType", "finding_intervention_type", []),
    ("load_finding_data", "FindingIntervention", "finding_intervention",
     [("intervention_types", "FindingInterventionType"),
      ("required_lab_values", "LabValue"),
      ("contraindications", "Contraindication")]),
    ("load_finding_data", "FindingType", "finding_type", []),
    ("load_finding_data", "Finding", "finding",
     [("finding_types", "FindingType"),
      ("examinations", "Examination"),
      ("finding_interventions", "FindingIntervention")]),
    ("load_finding_data", "FindingClassificationType", "finding_classification_type", []),
    ("load_finding_data", "FindingClassificationChoice", "finding_classification_choice", []),
    ("load_finding_data", "FindingClassification", "finding_classification",
     [("classification_types", "FindingClassificationType"),
      ("findings", "Finding"),
      ("examinations", "Examination"),
      ("finding_types", "FindingType"),
      ("choices", "FindingClassificationChoice")]),
    ("load_examination_indication_data", "ExaminationIndication", "examination_indication",
     [("examinations", "Examination"),
      ("expected_interventions", "FindingIntervention")]),
    ("load_examination_indication_data", "ExaminationIndicationClassification",
     "examination_indication_classification",
     [("examinations", "Examination"),
      ("indications", "ExaminationIndication")]),
    ("load_examination_indication_data", "ExaminationIndicationClassificationChoice",
     "examination_indication_classification_choice",
     [("classification", "ExaminationIndicationClassification")]),
    ("load_medication_data", "Medication", "medication", [("default_unit", "Unit")]),
    ("load_medication_data", "MedicationIndicationType", "medication_indication_type", []),
    ("load_medication_data", "MedicationIntakeTime", "medication_intake_time", []),
    ("load_medication_data", "MedicationSchedule", "medication_schedule",
     [("medication", "Medication"),
      ("intake_times", "MedicationIntakeTime"),
      ("unit", "Unit")]),
    ("load_medication_data", "MedicationIndication", "medication_indication",
     [("indication_type", "MedicationIndicationType"),
      ("medication_schedules", "MedicationSchedule"),
      ("diseases", "Disease"),
      ("events", "Event"),
      ("disease_classification_choices", "DiseaseClassificationChoice"),
      ("sources", "InformationSource")]),
    ("load_requirement_data", "RequirementType", "requirement_type", []),
    ("load_requirement_data", "RequirementOperator", "requirement_operator", []),
    ("load_requirement_data", "Requirement", "requirement",
     [("requirement_types", "RequirementType"),
      ("operators", "RequirementOperator"),
      ("unit", "Unit"),
      ("examinations", "Examination"),
      ("examination_indications", "ExaminationIndication"),
      ("diseases", "Disease"),
      ("disease_classification_choices", "DiseaseClassificationChoice"),
      ("events", "Event"),
      ("lab_values", "LabValue"),
      ("findings", "Finding"),
      ("finding_classifications", "FindingClassification"),
      ("finding_classification_choices", "FindingClassificationChoice"),
      ("finding_interventions", "FindingIntervention"),
      ("risks", "Risk"),
      ("risk_types", "RiskType"),
      ("medication_indications", "MedicationIndication"),
      ("medication_indication_types", "MedicationIndicationType"),
      ("medication_schedules", "MedicationSchedule"),
      ("medications", "Medication"),
      ("medication_intake_times", "MedicationIntakeTime"),
      ("genders", "Gender")]),
    ("load_requirement_data", "RequirementSetType", "requirement_set_type", []),
    ("load_requirement_data", "ExaminationRequirementSet", "examination_requirement_set",
     [("examinations", "Examination")]),
    ("load_requirement_data", "RequirementSet", "requirement_set",
     [("requirement_set_type", "RequirementSetType"),
      ("requirements", "Requirement"),
      ("links_to_sets", "RequirementSet"),
      ("information_sources", "InformationSource"),
      ("tags", "Tag"),
      ("reqset_exam_links", "ExaminationRequirementSet")]),
    ("load_ai_model_label_data", "LabelType", "ai_model_label/label-type", []),
    ("load_ai_model_label_data", "Label", "ai_model_label/label", [("label_type", "LabelType")]),
    ("load_ai_model_label_data", "LabelSet", "ai_model_label/label-set", [("labels", "Label")]),
    ("load_ai_model_data", "ModelType", "ai_model_type", []),
    ("load_ai_model_data", "VideoSegmentationLabel", "ai_model_video_segmentation_label", []),
    ("load_ai_model_data", "VideoSegmentationLabelSet", "ai_model_video_segmentation_labelset",
     [("labels", "VideoSegmentationLabel")]),
    ("load_ai_model_data", "AiModel", "ai_model",
     [("video_segmentation_labelset", "VideoSegmentationLabelSet"),
      ("model_type", "ModelType")]),
    # Not in load_base_db_data (see the docstring); its fk pairs are handled by
    # model_meta_problems(), because `model` has a default.
    (None, "ModelMeta", "ai_model_meta",
     [("labelset", "LabelSet"), ("model", "AiModel")]),
]


def note(msg):
    print(msg, file=sys.stderr)


def key_text(value):
    """Render a natural-key value the way it appears in problem details."""
    return value if isinstance(value, str) else json.dumps(value)


def read_tree(tree):
    """Read every planned directory. Returns (counts, entries, files_read).

    entries: list of dicts with step index, file, index, name, fields, in
    EndoregDB processing order (plan order, then sorted file name, then list
    position).
    """
    counts = OrderedDict()
    entries = []
    files_read = 0
    for step, (_cmd, model, rel_dir, _fks) in enumerate(PLAN):
        abs_dir = os.path.join(tree, rel_dir)
        counts[rel_dir] = 0
        if not os.path.isdir(abs_dir):
            # EndoregDB: os.listdir raises FileNotFoundError and the command aborts.
            note(f"WARNING: directory {rel_dir} ({model}) is missing; EndoregDB would crash")
            continue
        names = sorted(n for n in os.listdir(abs_dir) if n.endswith(".yaml"))
        for fname in names:
            path = os.path.join(abs_dir, fname)
            rel_file = f"{rel_dir}/{fname}"
            if not os.path.isfile(path):
                note(f"WARNING: {rel_file} is not a regular file; EndoregDB would crash")
                continue
            files_read += 1
            with open(path, "r", encoding="utf-8") as handle:
                try:
                    data = yaml.safe_load(handle)
                except yaml.YAMLError as err:
                    # EndoregDB aborts the whole command on a parse error.
                    note(f"ERROR: {rel_file} is not valid YAML; EndoregDB would crash: {err}")
                    raise SystemExit(1)
            if data is None:
                note(f"WARNING: {rel_file} is empty; EndoregDB would crash (iterating None)")
                continue
            if not isinstance(data, list):
                note(f"WARNING: {rel_file} is a {type(data).__name__}, not a list; skipped")
                continue
            for index, item in enumerate(data):
                counts[rel_dir] += 1
                fields = item.get("fields") if isinstance(item, dict) else None
                if not isinstance(fields, dict):
                    note(f"WARNING: {rel_file} #{index} has no 'fields' mapping")
                    fields = {}
                entries.append({
                    "step": step,
                    "file": rel_file,
                    "index": index,
                    "name": fields.get("name"),
                    "fields": fields,
                })
    return counts, entries, files_read


def skipped_directories(tree, planned):
    """Directories (relative, '/'-separated, the root as '.') holding *.yaml
    files of their own that no plan step reads: [(dir, number of files)]."""
    out = []
    for here, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        rel = os.path.relpath(here, tree).replace(os.sep, "/")
        n = sum(1 for f in filenames
                if f.endswith(".yaml") and os.path.isfile(os.path.join(here, f)))
        if n and rel not in planned:
            out.append((rel, n))
    return out


def meta_version(value):
    """A ModelMeta version as text, or None if it is not an integer or text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def model_meta_problems(entries, exists, dirs):
    """Duplicates and dangling references of ModelMeta entries.
    Returns (problems, number of versions an empty database gets)."""
    problems = []
    survivors = OrderedDict()   # (model, version) -> entry, later wins
    first_file = {}
    for e in entries:
        f = e["fields"]
        version = meta_version(f.get("version"))
        model = f.get("model", e["name"])
        if not (isinstance(e["name"], str) and isinstance(model, str)
                and isinstance(f.get("labelset"), str) and version is not None):
            continue
        key = (model, version)
        if key in first_file:
            problems.append((e["file"], e["index"], "duplicate_name",
                             f"model {key[0]} version {key[1]} also defined in "
                             f"{first_file[key]}", key_text(e["name"])))
        else:
            first_file[key] = e["file"]
        survivors[key] = e
    created = 0
    for (model, _version), e in survivors.items():
        sound = True
        for field, target, value in (("model", "AiModel", model),
                                     ("labelset", "LabelSet", e["fields"]["labelset"])):
            if not exists(target, value):
                problems.append((e["file"], e["index"], "dangling_reference",
                                 f"{field} -> {dirs[target]}:{key_text(value)} does not "
                                 f"exist; the version is not imported",
                                 key_text(e["name"])))
                sound = False
        created += sound
    return problems, created


def main(argv):
    if len(argv) != 2:
        note("usage: reference_count.py TREE")
        return 2
    tree = argv[1]
    counts, entries, files_read = read_tree(tree)

    model_dirs = {}
    for _cmd, model, rel_dir, _fks in PLAN:
        model_dirs.setdefault(model, []).append(rel_dir)
    dir_of_step = [p[2] for p in PLAN]

    problems = []

    meta_step = next(i for i, p in enumerate(PLAN) if p[1] == "ModelMeta")
    metas = [e for e in entries if e["step"] == meta_step]
    entries = [e for e in entries if e["step"] != meta_step]

    # Names per directory; duplicate detection in processing order.
    first_def = {}          # (dir, name) -> file of first definition
    names_in_dir = {}       # dir -> set of names
    for e in entries:
        name = e["name"]
        if name is None:
            continue
        rel_dir = dir_of_step[e["step"]]
        key = (rel_dir, name)
        if key in first_def:
            problems.append((e["file"], e["index"], "duplicate_name",
                             f"also defined in {first_def[key]}", key_text(name)))
        else:
            first_def[key] = e["file"]
        names_in_dir.setdefault(rel_dir, set()).add(name)

    def exists(model, value):
        return any(value in names_in_dir.get(d, ()) for d in model_dirs.get(model, ()))

    # Dangling references (whole-tree resolution) and EndoregDB order failures.
    loaded_so_far = {}      # model -> names already saved when simulating EndoregDB
    order_failures = []
    null_fks = []
    for e in entries:
        _cmd, model, rel_dir, fks = PLAN[e["step"]]
        fields = e["fields"]
        label = key_text(e["name"]) if e["name"] is not None else f"#{e['index']}"
        for field, target in fks:
            if field not in fields:
                continue
            raw = fields[field]
            if raw is None:
                null_fks.append(f"{e['file']} {label}: {field} is null")
                continue
            values = raw if isinstance(raw, list) else [raw]
            for value in values:
                target_dir = model_dirs[target][0]
                if not exists(target, value):
                    problems.append((e["file"], e["index"], "dangling_reference",
                                     f"{field} -> {target_dir}:{key_text(value)} does not exist",
                                     label))
                elif value not in loaded_so_far.get(target, set()):
                    order_failures.append(
                        f"{e['file']} {label}: {field} -> {target_dir}:{key_text(value)}")
        if e["name"] is not None:
            loaded_so_far.setdefault(model, set()).add(e["name"])

    meta_problems, meta_created = model_meta_problems(
        metas, exists, {m: d[0] for m, d in model_dirs.items()})
    problems.extend(meta_problems)

    for rel_dir, n in skipped_directories(tree, set(dir_of_step)):
        problems.append((rel_dir, 0, "skipped_directory",
                         f"{n} YAML file(s) here are not imported: the registry has "
                         f"no kind for this directory", ""))

    created = OrderedDict(
        (d, len(names_in_dir.get(d, ()))) for d in counts if d != PLAN[meta_step][2])
    created[PLAN[meta_step][2]] = meta_created

    problems.sort(key=lambda p: (p[0], p[1], p[2], p[3]))
    out = {
        "counts": counts,
        "created": created,
        "problems": [
            {"file": f, "entry": label, "kind": kind, "detail": detail}
            for (f, _i, kind, detail, label) in problems
        ],
    }
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")

    # Human summary on stderr.
    kinds = Counter(p[2] for p in problems)
    note(f"tree: {tree}")
    note(f"models: {len(PLAN)}  directories: {len(counts)}  yaml files read: {files_read}  "
         f"entries: {sum(counts.values())}")
    for rel_dir, n in counts.items():
        note(f"  {rel_dir:48s} {n:5d}")
    note(f"problems: {len(problems)} "
         f"(dangling_reference: {kinds.get('dangling_reference', 0)}, "
         f"duplicate_name: {kinds.get('duplicate_name', 0)}, "
         f"skipped_directory: {kinds.get('skipped_directory', 0)})")
    for f, _i, kind, detail, label in problems:
        note(f"  {kind:18s} {f} [{label}] {detail}")
    if null_fks:
        note(f"null foreign-key values (EndoregDB warns and skips; not problems): {len(null_fks)}")
        for line in null_fks:
            note("  " + line)
    note(f"informational: {len(order_failures)} references exist in the tree but are "
         f"defined AFTER the referencing entry in EndoregDB's load order (fresh DB), "
         f"so EndoregDB would skip them; not problems for a resolve-after-read importer:")
    for line in order_failures:
        note("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
