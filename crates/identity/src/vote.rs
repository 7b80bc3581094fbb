//! Voting one field across frames: the overlay shows the same name on every frame, OCR reads it a little
//! differently on some; the value most frames agree on, weighted by how sure OCR was, wins.
//!
//! For the winner: `agreement` is its share of the confidence-weighted readings (Σ confidence of its
//! readings / Σ confidence of all readings); `confidence` is that agreement times the mean OCR confidence of
//! its readings, so unanimous but unsure readings are not sure. It is *decisive* when every threshold holds;
//! otherwise the [`Outcome`] lists each reason, and the field waits for a person. Values are compared
//! exactly: parse and normalise readings before voting.

use std::collections::HashMap;
use std::hash::Hash;

/// One frame's reading of a field.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading<T> {
    pub value: T,
    /// The OCR's (or parser's) confidence, 0..=1; anything else counts as 0.
    pub confidence: f32,
}

/// When a vote is decisive. The defaults suit names and dates voted over a few dozen sampled frames.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Least `confidence` of the winner (default 0.8).
    pub min_confidence: f32,
    /// Least `agreement` of the winner (default 0.6).
    pub min_agreement: f32,
    /// Least number of readings of the winner (default 3).
    pub min_support: usize,
    /// Least lead of the winner's agreement over the runner-up's (default 0.2).
    pub min_margin: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { min_confidence: 0.8, min_agreement: 0.6, min_support: 3, min_margin: 0.2 }
    }
}

/// Why a vote is not decisive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Fewer readings of the winner than `min_support`.
    TooFewReadings,
    /// The winner's agreement is below `min_agreement`.
    Disagreement,
    /// The runner-up is closer than `min_margin`.
    Split,
    /// The winner's confidence is below `min_confidence`.
    LowConfidence,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Outcome<T> {
    pub value: T,
    /// `agreement` × mean confidence of the winner's readings, 0..=1.
    pub confidence: f32,
    /// The winner's share of the confidence-weighted readings, 0..=1.
    pub agreement: f32,
    /// The runner-up's share, 0 when all readings agree.
    pub runner_up: f32,
    /// Readings of the winner.
    pub support: usize,
    /// All readings.
    pub readings: usize,
    /// Empty when decisive.
    pub reasons: Vec<Reason>,
}

impl<T> Outcome<T> {
    pub fn is_decisive(&self) -> bool {
        self.reasons.is_empty()
    }
}

fn weight(confidence: f32) -> f32 {
    if confidence.is_finite() { confidence.clamp(0.0, 1.0) } else { 0.0 }
}

/// The vote over `readings`; `None` when there are none.
pub fn vote<T: Eq + Hash + Clone>(readings: &[Reading<T>], thresholds: &Thresholds) -> Option<Outcome<T>> {
    // Per distinct value: (first position, count, weight). The first position breaks ties, so the result does
    // not depend on hash order.
    let mut tally: HashMap<&T, (usize, usize, f32)> = HashMap::new();
    let mut total = 0.0f32;
    for (i, r) in readings.iter().enumerate() {
        let w = weight(r.confidence);
        total += w;
        let entry = tally.entry(&r.value).or_insert((i, 0, 0.0));
        entry.1 += 1;
        entry.2 += w;
    }
    let mut ranked: Vec<(&T, (usize, usize, f32))> = tally.into_iter().collect();
    ranked.sort_by(|(_, a), (_, b)| b.2.total_cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
    let (value, (_, support, won)) = ranked.first().copied()?;
    let share = |w: f32| if total > 0.0 { (w / total).clamp(0.0, 1.0) } else { 0.0 };
    let agreement = share(won);
    let runner_up = ranked.get(1).map(|(_, (_, _, w))| share(*w)).unwrap_or(0.0);
    let mean = if support > 0 { won / support as f32 } else { 0.0 };
    let confidence = (agreement * mean).clamp(0.0, 1.0);
    let mut reasons = Vec::new();
    if support < thresholds.min_support {
        reasons.push(Reason::TooFewReadings);
    }
    if agreement < thresholds.min_agreement {
        reasons.push(Reason::Disagreement);
    }
    if agreement - runner_up < thresholds.min_margin {
        reasons.push(Reason::Split);
    }
    if confidence < thresholds.min_confidence {
        reasons.push(Reason::LowConfidence);
    }
    Some(Outcome { value: value.clone(), confidence, agreement, runner_up, support, readings: readings.len(), reasons })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(value: &str, confidence: f32) -> Reading<String> {
        Reading { value: value.into(), confidence }
    }

    fn many(value: &str, confidence: f32, n: usize) -> Vec<Reading<String>> {
        (0..n).map(|_| r(value, confidence)).collect()
    }

    #[test]
    fn a_clear_majority_is_decisive() {
        let mut readings = many("MUSTERMANN", 0.95, 9);
        readings.push(r("MUSTERMAN", 0.6));
        let o = vote(&readings, &Thresholds::default()).unwrap();
        assert_eq!(o.value, "MUSTERMANN");
        assert!(o.is_decisive(), "{o:?}");
        assert_eq!((o.support, o.readings), (9, 10));
        assert!((o.agreement - 9.0 * 0.95 / (9.0 * 0.95 + 0.6)).abs() < 1e-6);
        assert!((o.confidence - o.agreement * 0.95).abs() < 1e-6);
    }

    #[test]
    fn a_split_field_waits_for_a_person() {
        let mut readings = many("12.08.1961", 0.9, 5);
        readings.extend(many("12.08.1967", 0.9, 5));
        let o = vote(&readings, &Thresholds::default()).unwrap();
        assert!(!o.is_decisive());
        assert!(o.reasons.contains(&Reason::Split) && o.reasons.contains(&Reason::Disagreement), "{:?}", o.reasons);
        assert_eq!(o.value, "12.08.1961", "of equals, the first read");
    }

    #[test]
    fn unanimous_but_unsure_or_too_few_readings_are_not_decisive() {
        let unsure = vote(&many("ERIKA", 0.4, 10), &Thresholds::default()).unwrap();
        assert_eq!(unsure.agreement, 1.0);
        assert_eq!(unsure.reasons, [Reason::LowConfidence]);
        let few = vote(&many("ERIKA", 0.99, 2), &Thresholds::default()).unwrap();
        assert_eq!(few.reasons, [Reason::TooFewReadings]);
        let lenient = Thresholds { min_support: 1, ..Thresholds::default() };
        assert!(vote(&many("ERIKA", 0.99, 2), &lenient).unwrap().is_decisive());
    }

    #[test]
    fn confidence_weighs_more_than_count() {
        let mut readings = many("ERIKA", 0.95, 3);
        readings.extend(many("FRIKA", 0.2, 4));
        let o = vote(&readings, &Thresholds::default()).unwrap();
        assert_eq!(o.value, "ERIKA");
        assert_eq!(o.support, 3);
        assert!(o.runner_up > 0.0 && o.runner_up < o.agreement);
    }

    #[test]
    fn nothing_or_nonsense_confidences_do_not_break_the_vote() {
        assert!(vote::<String>(&[], &Thresholds::default()).is_none());
        let o = vote(&[r("A", f32::NAN), r("A", -3.0), r("A", 7.0)], &Thresholds::default()).unwrap();
        assert!((0.0..=1.0).contains(&o.confidence) && (0.0..=1.0).contains(&o.agreement));
        let zero = vote(&many("A", 0.0, 5), &Thresholds::default()).unwrap();
        assert_eq!(zero.confidence, 0.0);
        assert!(!zero.is_decisive());
    }
}
