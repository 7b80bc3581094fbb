//! Report PDFs end to end: PDFs made here (no binary fixtures) with a fake patient, read back,
//! anonymised; templates from TOML; bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use endoreg_media::report::{KnownIdentity, ReportError, anonymise, default_templates, extract_text, parse_templates};
use lopdf::content::{Content, Operation};
use lopdf::{Document, EncryptionState, EncryptionVersion, Object, Permissions, Stream, StringFormat, dictionary};

// ---------------------------------------------------------------------------------------------
// Building PDFs

/// How the text of a page is drawn, for the layouts real producers use.
#[derive(Clone, Copy)]
enum Font {
    /// Helvetica, WinAnsiEncoding, no metrics in the file: what simple generators write.
    Standard,
    /// A composite (Type0, Identity-H) font with a ToUnicode map and widths, as office suites and
    /// browsers write: two-byte codes.
    Composite,
}

/// A text item: x, y (points from the bottom left), text.
type Item<'a> = (f32, f32, &'a str);

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn encode(font: Font, text: &str) -> Vec<u8> {
    match font {
        // WinAnsi agrees with Latin-1 for the characters used here, but for the dash.
        Font::Standard => text.chars().map(|c| if c == '–' { 0x96 } else { u8::try_from(u32::from(c)).unwrap() }).collect(),
        Font::Composite => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
    }
}

fn font_object(doc: &mut Document, font: Font) -> Object {
    match font {
        Font::Standard => Object::Reference(doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
        })),
        Font::Composite => {
            // Codes are the UTF-16 code units themselves, which the ToUnicode map states.
            let cmap = b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
                /CMapName /Identity-UCS def /CMapType 2 def\n\
                1 begincodespacerange <0000> <FFFF> endcodespacerange\n\
                2 beginbfrange <0020> <00FF> <0020> <2013> <2013> <2013> endbfrange\n\
                endcmap CMapName currentdict /CMap defineresource pop end end\n";
            let to_unicode = doc.add_object(Stream::new(dictionary! {}, cmap.to_vec()));
            let descendant = doc.add_object(dictionary! {
                "Type" => "Font", "Subtype" => "CIDFontType2", "BaseFont" => "ABCDEF+LiberationSans",
                "CIDSystemInfo" => dictionary! { "Registry" => Object::string_literal("Adobe"), "Ordering" => Object::string_literal("Identity"), "Supplement" => 0 },
                "DW" => 500,
                "W" => vec![32.into(), vec![278.into()].into(), 48.into(), 57.into(), 556.into()],
            });
            Object::Reference(doc.add_object(dictionary! {
                "Type" => "Font", "Subtype" => "Type0", "BaseFont" => "ABCDEF+LiberationSans", "Encoding" => "Identity-H",
                "DescendantFonts" => vec![descendant.into()], "ToUnicode" => to_unicode,
            }))
        }
    }
}

fn show(font: Font, text: &str) -> Operation {
    Operation::new("Tj", vec![Object::String(encode(font, text), StringFormat::Hexadecimal)])
}

/// Each item in its own text object, absolutely placed.
fn placed(font: Font, size: f32, items: &[Item<'_>]) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (x, y, text) in items {
        ops.push(Operation::new("BT", vec![]));
        ops.push(Operation::new("Tf", vec!["F1".into(), size.into()]));
        ops.push(Operation::new("Td", vec![(*x).into(), (*y).into()]));
        ops.push(show(font, text));
        ops.push(Operation::new("ET", vec![]));
    }
    ops
}

/// A whole document: one content stream per page, fonts under the page tree root (inherited).
fn document(font: Font, pages: Vec<Vec<Operation>>, compress: bool) -> Document {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = font_object(&mut doc, font);
    let mut kids = Vec::new();
    for operations in pages {
        let mut stream = Stream::new(dictionary! {}, Content { operations }.encode().unwrap());
        if compress {
            stream.compress().unwrap();
        }
        let content = doc.add_object(stream);
        kids.push(Object::Reference(doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content })));
    }
    let count = i64::try_from(kids.len()).unwrap();
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    doc.trailer.set("ID", vec![Object::string_literal("0123456789abcdef"), Object::string_literal("0123456789abcdef")]);
    doc
}

fn save(mut doc: Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

const CLINICAL: &str = "Polyp 6 mm, Paris 0-Is, NICE 2, kalte Schlinge, komplett abgetragen und geborgen.";

/// A German colonoscopy report for the fake patient Erika Mustermann, on two pages.
fn german_report() -> Vec<Vec<Item<'static>>> {
    vec![
        vec![
            (56.0, 790.0, "Klinikum Musterstadt – Medizinische Klinik II, Gastroenterologie"),
            (56.0, 760.0, "Koloskopie-Befund"),
            (56.0, 730.0, "Patient: Mustermann, Erika, geb. 12.08.1961"),
            (56.0, 716.0, "Untersuchungsdatum: 03.02.2024"),
            (56.0, 702.0, "Untersucher: Dr. med. Hans Beispiel"),
            (56.0, 670.0, "Indikation: Vorsorgekoloskopie. Frau Mustermann (geb. 12.8.1961) kommt ambulant."),
            (56.0, 656.0, "Befund: Coecum erreicht, Ileum intubiert, BBPS 8."),
            (56.0, 642.0, CLINICAL),
            (56.0, 628.0, "Sigma: Divertikulose ohne Entzündungszeichen."),
            (56.0, 600.0, "Beurteilung: Adenomverdacht, Histologie ausstehend."),
            (56.0, 586.0, "Rückfragen bitte an Dr. Beispiel, Endoskopie, Tel. 1234."),
        ],
        vec![
            (56.0, 800.0, "Erika Mustermann, *1961-08-12 – Seite 2"),
            (56.0, 770.0, "Empfehlung: Kontrollkoloskopie in 3 Jahren (nach Histologie)."),
            (56.0, 756.0, "E. Mustermann wurde am 3.2.2024 über den Befund aufgeklärt."),
        ],
    ]
}

fn german_pdf(font: Font, compress: bool) -> Vec<u8> {
    let pages = german_report().iter().map(|items| placed(font, 10.0, items)).collect();
    save(document(font, pages, compress))
}

// ---------------------------------------------------------------------------------------------
// Extraction

#[test]
fn extracts_the_lines_of_every_page() {
    for (font, compress) in [(Font::Standard, false), (Font::Standard, true), (Font::Composite, true)] {
        let text = extract_text(&german_pdf(font, compress)).unwrap();
        for page in german_report() {
            for (_, _, line) in page {
                assert!(text.lines().any(|l| l == line), "missing line {line:?} in\n{text}");
            }
        }
        // Pages come in order, separated by a form feed.
        let (first, second) = text.split_once('\x0C').unwrap();
        assert!(first.contains("Koloskopie-Befund") && second.contains("Seite 2"));
    }
}

#[test]
fn reads_a_table_drawn_column_by_column_as_rows() {
    // Labels first, then values, in one text object with relative moves and kerned TJ arrays —
    // content-stream order would separate every label from its value.
    let font = Font::Standard;
    let mut ops = vec![Operation::new("BT", vec![]), Operation::new("Tf", vec!["F1".into(), 10.into()])];
    ops.push(Operation::new("Td", vec![56.into(), 730.into()]));
    for label in ["Patient:", "Untersuchungsdatum:", "Untersucher:"] {
        ops.push(show(font, label));
        ops.push(Operation::new("Td", vec![0.into(), (-14).into()]));
    }
    ops.push(Operation::new("Td", vec![150.into(), 42.into()]));
    for value in [
        vec![
            Object::String(encode(font, "Muster"), StringFormat::Literal),
            (-20).into(),
            Object::String(encode(font, "mann, Erika, geb. 12.08.1961"), StringFormat::Literal),
        ],
        vec![Object::String(encode(font, "03.02.2024"), StringFormat::Literal)],
        vec![
            Object::String(encode(font, "Dr. med."), StringFormat::Literal),
            (-250).into(),
            Object::String(encode(font, "Hans Beispiel"), StringFormat::Literal),
        ],
    ] {
        ops.push(Operation::new("TJ", vec![Object::Array(value)]));
        ops.push(Operation::new("Td", vec![0.into(), (-14).into()]));
    }
    ops.push(Operation::new("ET", vec![]));
    let text = extract_text(&save(document(font, vec![ops], true))).unwrap();
    assert_eq!(
        text,
        "Patient:\tMustermann, Erika, geb. 12.08.1961\nUntersuchungsdatum:\t03.02.2024\nUntersucher:\tDr. med. Hans Beispiel\n"
    );
    let result = anonymise(&text, &default_templates(), &KnownIdentity::default());
    assert_eq!(result.found.patient_last_name.as_deref(), Some("Mustermann"));
    assert_eq!(result.found.examiner.as_deref(), Some("Dr. med. Hans Beispiel"));
    assert_eq!(
        result.text,
        "Patient:\t[PATIENT_NAME], geb. [BIRTH_DATE]\nUntersuchungsdatum:\t[EXAMINATION_DATE]\nUntersucher:\t[EXAMINER]\n"
    );
}

#[test]
fn reads_text_inside_form_xobjects() {
    let font = Font::Standard;
    let mut doc = document(font, vec![vec![Operation::new("Do", vec!["Fm1".into()])]], false);
    let form_ops = placed(font, 10.0, &[(0.0, 0.0, "Koloskopie-Befund im Formular")]);
    // The page's own resources replace the inherited ones, so the form brings its font.
    let pages_id = doc.catalog().unwrap().get(b"Pages").unwrap().as_reference().unwrap();
    let fonts = doc.get_dictionary(pages_id).unwrap().get(b"Resources").unwrap().as_dict().unwrap().get(b"Font").unwrap().clone();
    let form = doc.add_object(Stream::new(
        dictionary! { "Type" => "XObject", "Subtype" => "Form", "BBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        "Matrix" => vec![1.into(), 0.into(), 0.into(), 1.into(), 56.into(), 700.into()],
        "Resources" => dictionary! { "Font" => fonts } },
        Content { operations: form_ops }.encode().unwrap(),
    ));
    let page_id = doc.page_iter().next().unwrap();
    let page = doc.get_dictionary_mut(page_id).unwrap();
    page.set("Resources", dictionary! { "XObject" => dictionary! { "Fm1" => form } });
    let text = extract_text(&save(doc)).unwrap();
    assert_eq!(text, "Koloskopie-Befund im Formular\n");
}

// ---------------------------------------------------------------------------------------------
// Anonymisation

/// Every rendering of the fake identity that must not survive anonymisation.
const IDENTIFYING: &[&str] =
    &["Mustermann", "Erika", "12.08.1961", "12.8.1961", "1961-08-12", "03.02.2024", "3.2.2024", "Hans", "Beispiel"];

#[test]
fn anonymises_a_german_report() {
    let text = extract_text(&german_pdf(Font::Composite, true)).unwrap();
    let result = anonymise(&text, &default_templates(), &KnownIdentity::default());

    assert_eq!(result.template.as_deref(), Some("de-endoskopie"));
    assert_eq!(result.found.patient_first_name.as_deref(), Some("Erika"));
    assert_eq!(result.found.patient_last_name.as_deref(), Some("Mustermann"));
    assert_eq!(result.found.birth_date, Some(date(1961, 8, 12)));
    assert_eq!(result.found.examination_date, Some(date(2024, 2, 3)));
    assert_eq!(result.found.examiner.as_deref(), Some("Dr. med. Hans Beispiel"));

    let lower = result.text.to_lowercase();
    for value in IDENTIFYING {
        assert!(!lower.contains(&value.to_lowercase()), "{value:?} survived in\n{}", result.text);
    }
    // The clinical content stays, word for word.
    for kept in [CLINICAL, "Sigma: Divertikulose ohne Entzündungszeichen.", "Kontrollkoloskopie in 3 Jahren", "BBPS 8", "Tel. 1234"] {
        assert!(result.text.contains(kept), "{kept:?} lost in\n{}", result.text);
    }
    for line in [
        "Patient: [PATIENT_NAME], geb. [BIRTH_DATE]",
        "Untersuchungsdatum: [EXAMINATION_DATE]",
        "Untersucher: [EXAMINER]",
        "Indikation: Vorsorgekoloskopie. Frau [PATIENT_NAME] (geb. [BIRTH_DATE]) kommt ambulant.",
        "Rückfragen bitte an Dr. [EXAMINER], Endoskopie, Tel. 1234.",
        "[PATIENT_NAME], *[BIRTH_DATE] – Seite 2",
        "[PATIENT_NAME] wurde am [EXAMINATION_DATE] über den Befund aufgeklärt.",
    ] {
        assert!(result.text.lines().any(|l| l == line), "missing {line:?} in\n{}", result.text);
    }
}

#[test]
fn anonymises_an_english_report() {
    let items = [
        (56.0, 790.0, "Endoscopy Unit, St. Example Hospital"),
        (56.0, 760.0, "Name: Doe, John"),
        (300.0, 760.0, "DOB: 04/23/1958"),
        (56.0, 746.0, "Date of examination: 2024-02-03"),
        (56.0, 732.0, "Endoscopist: Jane Smith, MD"),
        (56.0, 700.0, "Findings: Polyp 6 mm, Paris 0-Is, NICE 2, removed with cold snare."),
        (56.0, 686.0, "Mr. Doe (born April 23, 1958) tolerated the procedure well."),
        (56.0, 672.0, "Report signed by J. Smith on Feb 3, 2024."),
    ];
    let text = extract_text(&save(document(Font::Standard, vec![placed(Font::Standard, 10.0, &items)], false))).unwrap();
    assert!(text.contains("Name: Doe, John\tDOB: 04/23/1958\n"), "{text}");

    let result = anonymise(&text, &default_templates(), &KnownIdentity::default());
    assert_eq!(result.template.as_deref(), Some("en-endoscopy"));
    assert_eq!(result.found.patient_first_name.as_deref(), Some("John"));
    assert_eq!(result.found.patient_last_name.as_deref(), Some("Doe"));
    assert_eq!(result.found.birth_date, Some(date(1958, 4, 23)));
    assert_eq!(result.found.examination_date, Some(date(2024, 2, 3)));
    assert_eq!(result.found.examiner.as_deref(), Some("Jane Smith, MD"));
    for value in ["Doe", "John", "04/23/1958", "April 23, 1958", "2024-02-03", "Feb 3, 2024", "Jane", "Smith"] {
        assert!(!result.text.contains(value), "{value:?} survived in\n{}", result.text);
    }
    assert!(result.text.contains("Findings: Polyp 6 mm, Paris 0-Is, NICE 2, removed with cold snare."));
    assert!(result.text.contains("Name: [PATIENT_NAME]\tDOB: [BIRTH_DATE]"), "{}", result.text);
    assert!(result.text.contains("Mr. [PATIENT_NAME] (born [BIRTH_DATE])"), "{}", result.text);
    assert!(result.text.contains("Report signed by [EXAMINER] on [EXAMINATION_DATE]."), "{}", result.text);
}

#[test]
fn known_identity_is_replaced_without_a_template() {
    let known = KnownIdentity {
        first_name: Some("Jürgen".into()),
        last_name: Some("Müller-Lüdenscheidt".into()),
        birth_date: Some(date(1950, 1, 5)),
        examination_date: None,
        examiner: Some("Prof. Dr. Anna Weber".into()),
    };
    let text = "Kurzbrief\nHerr MUELLER-LUEDENSCHEIDT, Juergen (05.01.1950) wurde von Prof. Weber untersucht.\n\
                Herr Müller - Lüdenscheidt, 5. Januar 1950; J. Müller-Lüdenscheidt; Jürgen. Magen: Gastritis Typ C.";
    let result = anonymise(text, &default_templates(), &known);
    assert_eq!(result.template, None);
    assert_eq!(result.found, Default::default());
    assert_eq!(
        result.text,
        "Kurzbrief\nHerr [PATIENT_NAME] ([BIRTH_DATE]) wurde von Prof. [EXAMINER] untersucht.\n\
         Herr [PATIENT_NAME], [BIRTH_DATE]; [PATIENT_NAME]; [PATIENT_NAME]. Magen: Gastritis Typ C."
    );
}

#[test]
fn text_without_identity_is_left_alone() {
    let text = "Gastroskopie: unauffällig. Polyp 6 mm, Paris 0-Is, NICE 2.";
    let result = anonymise(text, &default_templates(), &KnownIdentity::default());
    assert_eq!(result.text, text);
    assert_eq!(result.template, None);
}

#[test]
fn the_identity_never_shows_in_debug_output() {
    let text = "Patient: Mustermann, Erika, geb. 12.08.1961\nUntersucher: Dr. Hans Beispiel\n";
    let result = anonymise(text, &default_templates(), &KnownIdentity { first_name: Some("Erika".into()), ..Default::default() });
    assert!(result.found.patient_last_name.is_some());
    let debug = format!("{result:?} {:?}", KnownIdentity { first_name: Some("Erika".into()), ..Default::default() });
    for value in ["Mustermann", "Erika", "1961", "Beispiel"] {
        assert!(!debug.contains(value), "{value} in {debug}");
    }
}

// ---------------------------------------------------------------------------------------------
// Templates

#[test]
fn default_templates_load() {
    let templates = default_templates();
    let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["de-endoskopie", "en-endoscopy"]);
    assert!(templates.iter().all(|t| !t.patient_name.is_empty() && !t.birth_date.is_empty() && !t.examiner.is_empty()));
}

#[test]
fn a_template_from_toml_finds_its_fields() {
    let templates = parse_templates(
        r#"
        [[template]]
        name = "praxis-x"
        date_formats = ["%d.%m.%Y"]
        patient_name = [{ pattern = '^Pat\.:\s*(?P<value>.+)$', name_order = "last_first" }]
        birth_date = [{ pattern = '^Geb\.-Dat\.:\s*(?P<value>\S+)' }]
        examination_date = [{ pattern = '^Datum:\s*(?P<value>\S+)', formats = ["%Y%m%d"] }]
        examiner = [{ pattern = '^Arzt:\s*(?P<value>.+)$' }]
        "#,
    )
    .unwrap();
    let text = "Pat.: SCHMIDT Anna Lena\nGeb.-Dat.: 01.02.1970\nDatum: 20240203\nArzt: Dr. K. Wolf\nAnna Lena berichtet über Schmerzen.";
    let result = anonymise(text, &templates, &KnownIdentity::default());
    assert_eq!(result.template.as_deref(), Some("praxis-x"));
    assert_eq!(result.found.patient_last_name.as_deref(), Some("SCHMIDT"));
    assert_eq!(result.found.patient_first_name.as_deref(), Some("Anna Lena"));
    assert_eq!(result.found.birth_date, Some(date(1970, 2, 1)));
    assert_eq!(result.found.examination_date, Some(date(2024, 2, 3)));
    assert_eq!(
        result.text,
        "Pat.: [PATIENT_NAME]\nGeb.-Dat.: [BIRTH_DATE]\nDatum: [EXAMINATION_DATE]\nArzt: [EXAMINER]\n[PATIENT_NAME] berichtet über Schmerzen."
    );
}

#[test]
fn bad_templates_fail_naming_the_template_and_rule() {
    let cases = [
        (
            "[[template]]\nname = 'broken'\npatient_name = [{ pattern = 'ok (?P<value>.+)' }, { pattern = 'Patient: (?P<value>[a-z' }]\n",
            &["\"broken\"", "patient_name rule 2", "invalid regular expression"][..],
        ),
        (
            "[[template]]\nname = 'nogroup'\nexaminer = [{ pattern = 'Untersucher: (.+)' }]\n",
            &["\"nogroup\"", "examiner rule 1", "no capture group named `value`"],
        ),
        (
            "[[template]]\nname = 'dates'\nbirth_date = [{ pattern = 'geb. (?P<value>.+)', formats = ['%d.%m'] }]\n",
            &["\"dates\"", "birth_date rule 1", "%d.%m", "whole date"],
        ),
        ("[[template]]\nname = 'typo'\npatient_nme = [{ pattern = '(?P<value>.+)' }]\n", &["unknown field", "patient_nme"]),
        (
            "[[template]]\nname = 'order'\nexaminer = [{ pattern = '(?P<value>.+)', name_order = 'last_first' }]\n",
            &["\"order\"", "examiner rule 1", "name_order"],
        ),
        ("[[template]]\nname = 'empty'\n", &["\"empty\"", "no rules"]),
        (
            "[[template]]\nname = 'twice'\nexaminer = [{ pattern = '(?P<value>.+)' }]\n[[template]]\nname = 'twice'\nexaminer = [{ pattern = '(?P<value>.+)' }]\n",
            &["\"twice\"", "defined twice"],
        ),
    ];
    for (toml, expected) in cases {
        let message = parse_templates(toml).unwrap_err().to_string();
        for part in expected {
            assert!(message.contains(part), "{part:?} not in: {message}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn bad_input_gives_a_clear_error() {
    let valid = german_pdf(Font::Standard, true);
    let expect = |bytes: &[u8], check: fn(&ReportError) -> bool, words: &str| {
        let error = extract_text(bytes).unwrap_err();
        assert!(check(&error), "unexpected {error:?}");
        assert!(error.to_string().contains(words), "{words:?} not in {error}");
    };
    expect(b"", |e| matches!(e, ReportError::Empty), "empty");
    expect(b" \n\t", |e| matches!(e, ReportError::Empty), "empty");
    expect(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", |e| matches!(e, ReportError::NotPdf { .. }), "PNG image");
    expect(b"Patient: Mustermann", |e| matches!(e, ReportError::NotPdf { .. }), "not a PDF");
    let random: Vec<u8> = (0u32..4096).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    expect(&random, |e| matches!(e, ReportError::NotPdf { .. }), "not a PDF");
    expect(&valid[..valid.len() / 2], |e| matches!(e, ReportError::Truncated), "truncated");
    expect(
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        |e| matches!(e, ReportError::NoPages | ReportError::Corrupt(_)),
        "PDF",
    );
    expect(b"%PDF-1.7\n\x00\x01\x02 garbage garbage\n%%EOF\n", |e| matches!(e, ReportError::Corrupt(_) | ReportError::NoPages), "PDF");
}

#[test]
fn a_pdf_without_text_is_reported_as_needing_ocr() {
    // A "scanned" page: only an image.
    let mut doc = document(
        Font::Standard,
        vec![vec![
            Operation::new("q", vec![]),
            Operation::new("cm", vec![595.into(), 0.into(), 0.into(), 842.into(), 0.into(), 0.into()]),
            Operation::new("Do", vec!["Im1".into()]),
            Operation::new("Q", vec![]),
        ]],
        false,
    );
    let image = doc.add_object(Stream::new(
        dictionary! { "Type" => "XObject", "Subtype" => "Image", "Width" => 2, "Height" => 2, "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8 },
        vec![0, 255, 255, 0],
    ));
    let page_id = doc.page_iter().next().unwrap();
    doc.get_dictionary_mut(page_id).unwrap().set("Resources", dictionary! { "XObject" => dictionary! { "Im1" => image } });
    let error = extract_text(&save(doc)).unwrap_err();
    assert!(matches!(error, ReportError::NoText), "{error:?}");
    assert!(error.to_string().contains("OCR is not supported"));

    let blank = save(document(Font::Standard, vec![vec![]], false));
    assert!(matches!(extract_text(&blank), Err(ReportError::NoText)));
}

fn encrypted(user_password: &str) -> Vec<u8> {
    let pages = german_report().iter().map(|items| placed(Font::Standard, 10.0, items)).collect();
    let mut doc = document(Font::Standard, pages, true);
    let state = EncryptionState::try_from(EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner-secret",
        user_password,
        key_length: 128,
        permissions: Permissions::all(),
    })
    .unwrap();
    doc.encrypt(&state).unwrap();
    save(doc)
}

#[test]
fn a_password_protected_pdf_is_reported_as_encrypted() {
    let error = extract_text(&encrypted("user-secret")).unwrap_err();
    assert!(matches!(error, ReportError::Encrypted), "{error:?}");
    assert!(error.to_string().contains("encrypted"));
}

#[test]
fn a_pdf_protected_only_by_permissions_is_read() {
    // An empty user password: any reader opens it, and so do we.
    let text = extract_text(&encrypted("")).unwrap();
    assert!(text.contains("Patient: Mustermann, Erika, geb. 12.08.1961"), "{text}");
}

#[test]
fn damaged_pdfs_never_panic() {
    // Deterministic damage all over a valid file: flipped bytes, cut-outs. Whatever comes back,
    // it must come back (a panic would fail the test; the guard turns it into Unreadable).
    let valid = german_pdf(Font::Composite, true);
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut bytes = valid.clone();
        let at = (next() as usize) % bytes.len();
        if round % 3 == 0 {
            let len = (next() as usize % 200).min(bytes.len() - at);
            bytes.drain(at..at + len);
        } else {
            for _ in 0..1 + next() % 8 {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
        }
        let _ = extract_text(&bytes);
    }
}

#[test]
fn templates_work_on_dictionary_values_too() {
    // The worker's config may embed templates; they deserialise from any TOML table.
    let table: toml::Table = toml::from_str("name = 'x'\nexaminer = [{ pattern = 'Arzt: (?P<value>.+)' }]").unwrap();
    let template: endoreg_media::report::ReportTemplate = table.try_into().unwrap();
    assert_eq!(template.name, "x");
}

#[test]
fn a_form_that_draws_itself_is_bounded() {
    // Each level draws the form ten times: without a bound, ten to the nesting depth.
    let font = Font::Standard;
    let mut doc = document(font, vec![vec![Operation::new("Do", vec!["Fm1".into()])]], false);
    let form_id = doc.new_object_id();
    let mut ops = placed(font, 10.0, &[(0.0, 0.0, "x")]);
    ops.extend((0..10).map(|_| Operation::new("Do", vec!["Fm1".into()])));
    let pages_id = doc.catalog().unwrap().get(b"Pages").unwrap().as_reference().unwrap();
    let fonts = doc.get_dictionary(pages_id).unwrap().get(b"Resources").unwrap().as_dict().unwrap().get(b"Font").unwrap().clone();
    let form = Stream::new(
        dictionary! { "Type" => "XObject", "Subtype" => "Form", "BBox" => vec![0.into(), 0.into(), 10.into(), 10.into()],
        "Resources" => dictionary! { "Font" => fonts, "XObject" => dictionary! { "Fm1" => form_id } } },
        Content { operations: ops }.encode().unwrap(),
    );
    doc.objects.insert(form_id, Object::Stream(form));
    let page_id = doc.page_iter().next().unwrap();
    doc.get_dictionary_mut(page_id).unwrap().set("Resources", dictionary! { "XObject" => dictionary! { "Fm1" => form_id } });
    let started = std::time::Instant::now();
    let error = extract_text(&save(doc)).unwrap_err();
    assert!(matches!(error, ReportError::Corrupt(_)), "{error:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
