//! Putting back umlaut dots Tesseract dropped.
//!
//! Debian's German model reads the dots of a capital umlaut at the start of a word as nothing when the next
//! letter is `n`, `l` or `N` (`Ünal` → `Unal`, `ÜNAL` → `UNAL`; `Über` and `Öztürk` read right), now and
//! then drops an umlaut inside a word, and sometimes writes both letters (`ÜUnal`). A name that lost its
//! dots gets a different EndoregDB hash and no blind-index match, so the field would wait for a person
//! every time. The dots are still in the image: two small blobs side by side, above one letter.
//!
//! The check finds such pairs in the prepared image (connected components: two dot-sized blobs of similar
//! size and height, side by side, both over the same letter body just beneath them) and compares with the
//! text: if the image holds more pairs than the text has umlauts, each pair marks the `A`, `O`, `U`, `a`,
//! `o` or `u` whose position in the line (its index over the text's length) is within 0.6 of a character of
//! the pair's position (over the inked width), and only if no other such letter is nearly as near; a pair
//! over a letter that already has its dots changes nothing. A pair over `ii` makes it `ü` (the model reads
//! a `ü`'s dots as two i's now and then: `Öztiirk`). A doubled letter next to its umlaut (`ÜU`) loses
//! the plain one when every pair is accounted for. Everything uncertain leaves the text as Tesseract read it:
//! this only ever adds dots that are in the image. (Telling capitals from lower case by the height of the
//! letter under the dots failed on degraded frames, where a capital's dots merge into it.)

use crate::plane::LumaImage;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Blob {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    pixels: u32,
}

impl Blob {
    fn w(&self) -> u32 {
        self.x1 - self.x0 + 1
    }
    fn h(&self) -> u32 {
        self.y1 - self.y0 + 1
    }
    fn cx(&self) -> f32 {
        (self.x0 + self.x1) as f32 / 2.0
    }
    fn cy(&self) -> f32 {
        (self.y0 + self.y1) as f32 / 2.0
    }
}

/// 8-connected components of pixels darker than 128 (the prepared image is dark text on white).
fn components(img: &LumaImage) -> Vec<Blob> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let px = img.as_bytes();
    let mut seen = vec![false; w * h];
    let mut blobs = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if seen[start] || px[start] >= 128 {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (sx, sy) = ((start % w) as u32, (start / w) as u32);
        let mut b = Blob { x0: sx, y0: sy, x1: sx, y1: sy, pixels: 0 };
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            b.pixels += 1;
            b.x0 = b.x0.min(x as u32);
            b.x1 = b.x1.max(x as u32);
            b.y0 = b.y0.min(y as u32);
            b.y1 = b.y1.max(y as u32);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let n = ny as usize * w + nx as usize;
                    if !seen[n] && px[n] < 128 {
                        seen[n] = true;
                        stack.push(n);
                    }
                }
            }
        }
        blobs.push(b);
    }
    blobs
}

/// The horizontal centres of umlaut dot pairs, each over a letter body, and the line's left and right end.
fn find_pairs(blobs: &[Blob]) -> (Vec<f32>, f32, f32) {
    let tallest = blobs.iter().map(Blob::h).max().unwrap_or(0) as f32;
    if tallest < 6.0 {
        return (Vec::new(), 0.0, 0.0);
    }
    let is_dot = |b: &Blob| {
        let (w, h) = (b.w() as f32, b.h() as f32);
        h <= tallest * 0.28 && w <= tallest * 0.32 && w <= h * 2.2 && h <= w * 2.2
    };
    let bodies: Vec<&Blob> = blobs.iter().filter(|b| b.h() as f32 >= tallest * 0.4).collect();
    let left = bodies.iter().map(|b| b.x0).min().unwrap_or(0) as f32;
    let right = bodies.iter().map(|b| b.x1).max().unwrap_or(0) as f32;
    let dots: Vec<&Blob> = blobs.iter().filter(|b| is_dot(b)).collect();
    let mut pairs = Vec::new();
    let mut used = vec![false; dots.len()];
    for i in 0..dots.len() {
        for j in i + 1..dots.len() {
            if used[i] || used[j] {
                continue;
            }
            let (a, b) = if dots[i].x0 <= dots[j].x0 { (dots[i], dots[j]) } else { (dots[j], dots[i]) };
            let size = a.h().max(b.h()).max(a.w()).max(b.w()) as f32;
            let gap = b.x0 as f32 - a.x1 as f32;
            let same_row = (a.cy() - b.cy()).abs() <= size;
            let similar = (a.pixels.max(b.pixels) as f32) <= 2.5 * a.pixels.min(b.pixels) as f32;
            if !same_row || !similar || gap < 0.0 || gap > size * 3.0 {
                continue;
            }
            let bottom = a.y1.max(b.y1) as f32;
            // The letter under both dots, starting just beneath them.
            let base = bodies.iter().find(|body| {
                let top = body.y0 as f32;
                body.x0 as f32 <= a.cx() + size * 0.3
                    && body.x1 as f32 >= b.cx() - size * 0.3
                    && top > bottom
                    && top - bottom <= size * 2.5 + 2.0
            });
            if base.is_some() {
                used[i] = true;
                used[j] = true;
                pairs.push((a.cx() + b.cx()) / 2.0);
            }
        }
    }
    (pairs, left, right)
}

fn umlaut_of(c: char) -> Option<char> {
    Some(match c {
        'A' => 'Ä',
        'O' => 'Ö',
        'U' => 'Ü',
        'a' => 'ä',
        'o' => 'ö',
        'u' => 'ü',
        _ => return None,
    })
}

fn is_umlaut(c: char) -> bool {
    matches!(c, 'Ä' | 'Ö' | 'Ü' | 'ä' | 'ö' | 'ü')
}

/// `text` with the umlaut dots the image shows and the text lacks put back (see the module documentation).
pub(crate) fn restore(text: &str, image: &LumaImage) -> String {
    if !text.chars().any(|c| umlaut_of(c).is_some() || is_umlaut(c)) && !text.contains("ii") {
        return text.to_owned();
    }
    let blobs = components(image);
    let (pairs, left, right) = find_pairs(&blobs);
    if pairs.is_empty() || right <= left {
        return text.to_owned();
    }
    let mut chars: Vec<char> = text.chars().collect();
    let n = chars.len() as f32;
    // Where a character sits in the line, as a fraction of the line's width: exact for a monospaced font,
    // and measured within a fifth of a character for DejaVu Sans over a 29-character name.
    let pos = |i: usize| (i as f32 + 0.5) / n;
    let char_width = 1.0 / n;
    let have = chars.iter().filter(|c| is_umlaut(**c)).count();
    if pairs.len() > have {
        // Where a pair may belong: a letter that takes an umlaut (or has one), at its own position, or `ii`
        // (a `ü` whose dots were read as two i's; two real i's have a dot each, never a pair over one
        // letter), between its two letters.
        let mut candidates: Vec<(f32, usize, bool)> = Vec::new();
        for (i, c) in chars.iter().enumerate() {
            if umlaut_of(*c).is_some() || is_umlaut(*c) {
                candidates.push((pos(i), i, false));
            }
            if *c == 'i' && chars.get(i + 1) == Some(&'i') {
                candidates.push((pos(i) + char_width / 2.0, i, true));
            }
        }
        let mut edits: Vec<(usize, bool)> = Vec::new();
        for &x in &pairs {
            let at = (x - left) / (right - left);
            let mut near: Vec<(f32, usize, bool)> = candidates.iter().map(|&(p, i, ii)| ((p - at).abs(), i, ii)).collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            let Some(&(best, i, ii)) = near.first() else {
                continue;
            };
            let clear = near.get(1).is_none_or(|(second, _, _)| second - best >= 0.5 * char_width);
            if best <= 0.6 * char_width && clear && (ii || umlaut_of(chars[i]).is_some()) && !edits.contains(&(i, ii)) {
                edits.push((i, ii));
            }
        }
        // Right to left, so that replacing `ii` by one letter leaves the other indices valid.
        edits.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (i, ii) in edits {
            if ii {
                chars.splice(i..i + 2, ['ü']);
            } else if let Some(u) = umlaut_of(chars[i]) {
                chars[i] = u;
            }
        }
    }
    // `ÜU`: the letter written twice, once with and once without its dots, when every pair is accounted for.
    if pairs.len() == chars.iter().filter(|c| is_umlaut(**c)).count() {
        let mut i = 0;
        while i + 1 < chars.len() {
            if is_umlaut(chars[i]) && umlaut_of(chars[i + 1]) == Some(chars[i]) {
                chars.remove(i + 1);
            }
            i += 1;
        }
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::Rect;

    /// Draws blocks: a letter body and optional dots above it, dark on white like a prepared image.
    fn image_with(blocks: &[Rect]) -> LumaImage {
        let mut img = LumaImage::filled(200, 60, 255).expect("image");
        for b in blocks {
            img.fill_rect(*b, 0);
        }
        img
    }

    #[test]
    fn components_are_eight_connected() {
        let img = image_with(&[Rect::new(10, 10, 3, 3), Rect::new(13, 13, 2, 2), Rect::new(30, 10, 2, 2)]);
        let blobs = components(&img);
        assert_eq!(blobs.len(), 2);
        assert_eq!(blobs[0].pixels, 13);
    }

    // A 20 px cap height line: "U n a l" as blocks, with a dot pair over the U.
    fn unal(with_dots: bool) -> LumaImage {
        let mut blocks = vec![
            Rect::new(20, 20, 12, 20), // U
            Rect::new(36, 26, 10, 14), // n
            Rect::new(50, 26, 10, 14), // a
            Rect::new(64, 18, 3, 22),  // l
        ];
        if with_dots {
            blocks.push(Rect::new(21, 13, 3, 3));
            blocks.push(Rect::new(28, 13, 3, 3));
        }
        image_with(&blocks)
    }

    #[test]
    fn dots_over_a_capital_turn_its_letter_into_an_umlaut() {
        assert_eq!(restore("Unal", &unal(true)), "Ünal");
        assert_eq!(restore("Unal", &unal(false)), "Unal", "no dots, no change");
        assert_eq!(restore("Ünal", &unal(true)), "Ünal", "already right");
        assert_eq!(restore("ÜUnal", &unal(true)), "Ünal", "doubled letter");
    }

    #[test]
    fn a_colon_tittles_and_dots_without_a_letter_below_are_not_umlauts() {
        // A colon: two dots stacked, not side by side.
        let colon = image_with(&[Rect::new(20, 20, 12, 20), Rect::new(40, 22, 3, 3), Rect::new(40, 34, 3, 3)]);
        assert_eq!(restore("U:", &colon), "U:");
        // Two i with their tittles: each dot over its own stem.
        let ii = image_with(&[
            Rect::new(20, 20, 12, 20),
            Rect::new(40, 26, 3, 14),
            Rect::new(40, 20, 3, 3),
            Rect::new(46, 26, 3, 14),
            Rect::new(46, 20, 3, 3),
        ]);
        assert_eq!(restore("Uii", &ii), "Uii");
        // Dots on the baseline (an ellipsis) have no letter beneath them.
        let dots = image_with(&[Rect::new(20, 20, 12, 20), Rect::new(40, 37, 3, 3), Rect::new(46, 37, 3, 3)]);
        assert_eq!(restore("U..", &dots), "U..");
    }

    #[test]
    fn a_pair_marks_only_the_letter_beneath_it() {
        // "Jurgen" with a pair over the u, then over the e.
        let letters = [
            Rect::new(20, 20, 8, 20),  // J
            Rect::new(32, 26, 10, 14), // u
            Rect::new(46, 26, 8, 14),  // r
            Rect::new(58, 26, 10, 18), // g
            Rect::new(72, 26, 10, 14), // e
            Rect::new(86, 26, 10, 14), // n
        ];
        let over = |x: u32| {
            let mut blocks = letters.to_vec();
            blocks.push(Rect::new(x + 1, 21, 3, 3));
            blocks.push(Rect::new(x + 7, 21, 3, 3));
            image_with(&blocks)
        };
        assert_eq!(restore("Jurgen", &over(32)), "Jürgen");
        assert_eq!(restore("JURGEN", &over(32)), "JÜRGEN");
        assert_eq!(restore("Jurgen", &over(72)), "Jurgen", "no umlaut letter under the dots");
        assert_eq!(restore("Jiirgen", &over(32)), "Jürgen", "a ü read as ii");
    }
}
