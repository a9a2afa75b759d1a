//! The search behind the masker: every occurrence of every pattern, overlaps included.
//!
//! An Aho-Corasick automaton alone scans about 150–250 MB/s once it holds thousands of
//! patterns drawn from the same letters as ordinary text (a random secret's first bytes are
//! common bytes, so its own prefilters give up). In front of it sits a filter on each pattern's
//! first four bytes: two bits per 4-byte window, set by two hashes. The scan hashes every window
//! of the text and runs the automaton, anchored, only where both bits are set, which is rare.
//! (With one bit, a common word whose window collided with a pattern's, such as the "ssed" of
//! "processed", sent every occurrence to the automaton: most of the scan's time went there.)

use aho_corasick::{
    AhoCorasick, AhoCorasickKind, Anchored, BuildError, Input, MatchError, MatchKind, StartKind,
    automaton::OverlappingState,
};
use std::ops::Range;

/// The bytes a window of the filter covers: the default minimum length (4 characters) makes
/// every pattern at least this long.
const WINDOW: usize = 4;

/// Bits of filter per pattern: two of 64 set by each, so at most 1 in 32 bits is set and about
/// 1 in 1,000 of the text's windows needs a check by the automaton. More bits measured no
/// faster: hashing every window is what the scan spends its time on.
const BITS_PER_PATTERN: usize = 64;

/// The odd multipliers of the two hashes; the second is computed only when the first bit is set.
const HASH_MULTIPLIERS: [u32; 2] = [0x9e37_79b1, 0x85eb_ca77];

/// Bounds of the filter's size: 128 bytes to 256 KiB (which still fits a core's L2 cache).
const MIN_BITS: usize = 1 << 10;
const MAX_BITS: usize = 1 << 21;

/// A matcher over a fixed set of non-empty patterns.
pub(crate) struct Matcher {
    automaton: AhoCorasick,
    /// Absent when a pattern is shorter than [`WINDOW`] bytes: the automaton then scans alone.
    filter: Option<PrefixFilter>,
}

impl Matcher {
    /// Builds the automaton (with anchored and unanchored starts) and, when every pattern is
    /// long enough, the prefix filter.
    pub(crate) fn build<'a, I>(patterns: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let patterns = patterns.into_iter();
        // Overlapping search needs `MatchKind::Standard`. The contiguous NFA keeps memory
        // proportional to the patterns' total length; a DFA over thousands of patterns takes
        // hundreds of megabytes and, behind the filter, would gain nothing.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .start_kind(StartKind::Both)
            .build(patterns.clone())?;
        Ok(Self {
            automaton,
            filter: PrefixFilter::build(patterns),
        })
    }

    /// Whether `text` holds any pattern.
    pub(crate) fn is_match(&self, text: &str) -> Result<bool, MatchError> {
        let Some(filter) = &self.filter else {
            return Ok(self.automaton.try_find(text)?.is_some());
        };
        for start in filter.candidates(text.as_bytes()) {
            let input = Input::new(text).range(start..).anchored(Anchored::Yes);
            if self.automaton.try_find(input)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The union of the ranges of every occurrence of every pattern, as sorted, disjoint
    /// ranges; touching ranges are merged too.
    pub(crate) fn ranges(&self, text: &str) -> Result<Vec<Range<usize>>, MatchError> {
        let mut found = Vec::new();
        match &self.filter {
            Some(filter) => {
                for start in filter.candidates(text.as_bytes()) {
                    self.matches_at(text, start, &mut found)?;
                }
            }
            None => {
                let matches = self.automaton.try_find_overlapping_iter(text)?;
                found.extend(matches.map(|m| m.range()));
            }
        }
        Ok(merge(found))
    }
}

impl Matcher {
    /// Pushes every match starting at `start`. The overlapping iterator refuses anchored
    /// searches, so this drives the overlapping search step by step.
    fn matches_at(
        &self,
        text: &str,
        start: usize,
        found: &mut Vec<Range<usize>>,
    ) -> Result<(), MatchError> {
        let input = Input::new(text).range(start..).anchored(Anchored::Yes);
        let mut state = OverlappingState::start();
        loop {
            self.automaton
                .try_find_overlapping(input.clone(), &mut state)?;
            match state.get_match() {
                Some(found_match) => found.push(found_match.range()),
                None => return Ok(()),
            }
        }
    }
}

/// Sorts `ranges` and merges those that overlap or touch.
fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_unstable_by_key(|range| range.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// A bit per hashed 4-byte window: set for the first window of every pattern. A clear bit
/// proves no pattern starts at that offset.
struct PrefixFilter {
    bits: Vec<u64>,
    shift: u32,
}

impl PrefixFilter {
    fn build<'a>(patterns: impl Iterator<Item = &'a [u8]>) -> Option<Self> {
        let prefixes: Vec<u32> = patterns
            .map(|pattern| {
                pattern
                    .first_chunk::<WINDOW>()
                    .map(|w| u32::from_le_bytes(*w))
            })
            .collect::<Option<_>>()?;
        let size = (prefixes.len() * BITS_PER_PATTERN)
            .next_power_of_two()
            .clamp(MIN_BITS, MAX_BITS);
        let mut filter = Self {
            bits: vec![0; size / 64],
            shift: u32::BITS - size.trailing_zeros(),
        };
        for prefix in prefixes {
            for multiplier in HASH_MULTIPLIERS {
                let bit = filter.bit(prefix, multiplier);
                if let Some(word) = filter.bits.get_mut(bit / 64) {
                    *word |= 1 << (bit % 64);
                }
            }
        }
        Some(filter)
    }

    /// Multiplicative hashing: the top bits of the product mix all four bytes.
    fn bit(&self, window: u32, multiplier: u32) -> usize {
        (window.wrapping_mul(multiplier) >> self.shift) as usize
    }

    fn is_set(&self, window: u32) -> bool {
        HASH_MULTIPLIERS.iter().all(|&multiplier| {
            let bit = self.bit(window, multiplier);
            self.bits
                .get(bit / 64)
                .is_some_and(|word| word & (1 << (bit % 64)) != 0)
        })
    }

    /// The offsets of `text` where a pattern may start.
    fn candidates<'t>(&'t self, text: &'t [u8]) -> impl Iterator<Item = usize> + 't {
        text.windows(WINDOW)
            .enumerate()
            .filter_map(|(offset, window)| {
                let window = <[u8; WINDOW]>::try_from(window).ok()?;
                self.is_set(u32::from_le_bytes(window)).then_some(offset)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every occurrence found by trying each pattern at each offset, merged.
    fn naive(patterns: &[String], text: &str) -> Vec<Range<usize>> {
        let mut found = Vec::new();
        for start in 0..text.len() {
            for pattern in patterns {
                if text.as_bytes()[start..].starts_with(pattern.as_bytes()) {
                    found.push(start..start + pattern.len());
                }
            }
        }
        merge(found)
    }

    fn matcher(patterns: &[String]) -> Matcher {
        Matcher::build(patterns.iter().map(String::as_bytes)).unwrap()
    }

    #[test]
    fn the_filter_is_used_only_when_every_pattern_fills_a_window() {
        let long = ["abcd".to_owned(), "efghij".to_owned()];
        assert!(matcher(&long).filter.is_some());
        let short = ["abcd".to_owned(), "xyz".to_owned()];
        assert!(matcher(&short).filter.is_none());
    }

    #[test]
    fn the_filter_lets_few_windows_that_start_no_pattern_through() {
        let mut state = 0x2545_f491_u32;
        let mut letter = |first: u8| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from(first + (state % 26) as u8)
        };
        // Patterns in lower case, text in upper case: no window starts a pattern.
        let patterns: Vec<String> = (0..2_000)
            .map(|_| (0..12).map(|_| letter(b'a')).collect())
            .collect();
        let text: String = (0..100_000).map(|_| letter(b'A')).collect();
        let filter = PrefixFilter::build(patterns.iter().map(String::as_bytes)).unwrap();
        // One bit per pattern let about 1 window in 64 through (some 1,500 here).
        let candidates = filter.candidates(text.as_bytes()).count();
        assert!(candidates < 300, "{candidates} candidates");
    }

    #[test]
    fn self_overlapping_occurrences_are_merged() {
        let matcher = matcher(&["abab".to_owned()]);
        assert_eq!(matcher.ranges("xabababx ab abab").unwrap(), [1..7, 12..16]);
        assert!(matcher.is_match("xabab").unwrap());
        assert!(!matcher.is_match("xaba").unwrap());
    }

    proptest! {
        // A small alphabet makes overlaps and shared prefixes common.
        #[test]
        fn finds_what_a_naive_search_finds(
            patterns in prop::collection::vec("[ab]{1,6}", 1..6),
            text in "[abc]{0,60}",
        ) {
            let matcher = matcher(&patterns);
            let expected = naive(&patterns, &text);
            prop_assert_eq!(matcher.ranges(&text).unwrap(), expected.clone());
            prop_assert_eq!(matcher.is_match(&text).unwrap(), !expected.is_empty());
        }

        #[test]
        fn finds_what_a_naive_search_finds_with_the_filter(
            patterns in prop::collection::vec("[ab]{4,8}", 1..6),
            text in "[abc]{0,60}",
        ) {
            let matcher = matcher(&patterns);
            prop_assert!(matcher.filter.is_some());
            let expected = naive(&patterns, &text);
            prop_assert_eq!(matcher.ranges(&text).unwrap(), expected.clone());
            prop_assert_eq!(matcher.is_match(&text).unwrap(), !expected.is_empty());
        }
    }
}
