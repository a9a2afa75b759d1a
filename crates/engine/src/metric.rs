//! Metrics a task run records (`::{"metrics": [...]}::` lines of a script, as in Kestra).

use kestrel_secrets::MaskRegistry;
use std::collections::BTreeMap;
use std::fmt;

/// One measurement recorded by a task run. Its name and tags are masked like every text
/// readers see.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's name (`rows`).
    pub name: String,
    /// What the value measures.
    pub kind: MetricKind,
    /// The value: a count, a duration in seconds, or a level.
    pub value: f64,
    /// Tags, by name.
    pub tags: BTreeMap<String, String>,
}

/// The kinds of metrics, as Kestra names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// `counter`: a count added to the total.
    Counter,
    /// `timer`: a duration, in seconds.
    Timer,
    /// `gauge`: a level at one moment.
    Gauge,
}

impl MetricKind {
    /// The kind of that name as Kestra writes it (`counter`), if any.
    pub fn from_name(name: &str) -> Option<MetricKind> {
        [MetricKind::Counter, MetricKind::Timer, MetricKind::Gauge]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The kind's name as Kestra writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Timer => "timer",
            MetricKind::Gauge => "gauge",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Metric {
    /// Masks the name and every tag with `registry`.
    pub(crate) fn remask(&mut self, registry: &MaskRegistry) {
        self.name = registry.mask(&self.name).into_owned();
        self.tags = std::mem::take(&mut self.tags)
            .into_iter()
            .map(|(key, value)| {
                let key = registry.mask(&key).into_owned();
                (key, registry.mask(&value).into_owned())
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_as_in_kestra() {
        assert_eq!(MetricKind::from_name("timer"), Some(MetricKind::Timer));
        assert_eq!(MetricKind::from_name("Timer"), None);
        assert_eq!(MetricKind::Gauge.to_string(), "gauge");
    }

    #[test]
    fn names_and_tags_are_masked() {
        let registry = MaskRegistry::new(4);
        registry.register("K", "hunter22");
        let mut metric = Metric {
            name: "rows-hunter22".into(),
            kind: MetricKind::Counter,
            value: 1.0,
            tags: BTreeMap::from([("hunter22".into(), "user hunter22".into())]),
        };
        metric.remask(&registry);
        assert_eq!(metric.name, "rows-******");
        assert_eq!(metric.tags["******"], "user ******");
    }
}
