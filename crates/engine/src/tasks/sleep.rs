//! `io.kestra.plugin.core.flow.Sleep`: waits.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_flow::Level;
use std::time::Duration;

/// Waits for its duration. The engine drops the wait when the execution is killed or the
/// task's `timeout` passes, so a sleep holds nothing.
#[derive(Debug, Clone)]
pub(crate) struct SleepTask {
    duration: Duration,
}

impl SleepTask {
    /// A task waiting `duration`.
    pub(crate) fn new(duration: Duration) -> Self {
        Self { duration }
    }
}

#[async_trait]
impl Task for SleepTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        ctx.log(
            Level::Info,
            &format!("Waiting for {}", java_duration(self.duration)),
        );
        tokio::time::sleep(self.duration).await;
        Ok(())
    }
}

/// `duration` as Java's `Duration.toString()` writes it (`PT5S`, `PT1M30S`, `PT0.5S`): what
/// Kestra's log line shows.
fn java_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (hours, minutes, whole) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::from("PT");
    if hours > 0 {
        text.push_str(&format!("{hours}H"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}M"));
    }
    let nanos = duration.subsec_nanos();
    if whole > 0 || nanos > 0 || text.len() == 2 {
        text.push_str(&whole.to_string());
        if nanos > 0 {
            let fraction = format!("{nanos:09}");
            text.push('.');
            text.push_str(fraction.trim_end_matches('0'));
        }
        text.push('S');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::java_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_as_java_writes_them() {
        assert_eq!(java_duration(Duration::from_secs(5)), "PT5S");
        assert_eq!(java_duration(Duration::from_secs(90)), "PT1M30S");
        assert_eq!(java_duration(Duration::from_secs(3600)), "PT1H");
        assert_eq!(java_duration(Duration::from_millis(500)), "PT0.5S");
        assert_eq!(java_duration(Duration::ZERO), "PT0S");
    }
}
