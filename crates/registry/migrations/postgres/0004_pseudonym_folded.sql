-- Pseudonyms are unique trimmed and case-folded: the registry stores new ones in that form (`dup-1 ` is
-- stored as `DUP-1`). Existing ones are brought into it where that form is free; two that differ only in
-- case or surrounding spaces are left as they are, for a data manager to resolve. The index serves the
-- lookups by folded pseudonym (the duplicate check on create, the `pseudonym` filter), which find those too.
UPDATE patient SET pseudonym = UPPER(TRIM(pseudonym)), version = version + 1
 WHERE pseudonym <> UPPER(TRIM(pseudonym))
   AND NOT EXISTS (
       SELECT 1 FROM patient other
        WHERE other.id <> patient.id AND UPPER(TRIM(other.pseudonym)) = UPPER(TRIM(patient.pseudonym)));
CREATE INDEX patient_pseudonym_folded_idx ON patient (UPPER(TRIM(pseudonym)));
