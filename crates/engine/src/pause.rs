//! Pauses: a Pause task run waits, its execution PAUSED, until a resume comes through the
//! host's [`Resumer`] (the server's resume route), its `delay` passes, its `timeout` passes
//! (a failure) or the execution is killed. Where nothing can resume it (`kestrel run`), a
//! Pause with neither `delay` nor `timeout` ends the execution PAUSED at once.

use crate::runner::{OpenRun, Run};
use crate::{CancelToken, Inputs, State};
use kestrel_flow::{InputDef, Level};
use kestrel_secrets::SecretValue;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// One resume of a paused execution: the `onResume` inputs given, as text, and where the
/// engine answers whether it took them.
struct Resume {
    inputs: Vec<(String, SecretValue)>,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Resumes a paused execution from outside (the host keeps it; the engine holds the
/// [`Resumes`] made with it).
#[derive(Clone)]
pub struct Resumer {
    sender: mpsc::Sender<Resume>,
}

/// Where an execution's Pause tasks wait for resumes; given to the engine with
/// [`crate::Host`].
pub struct Resumes {
    receiver: tokio::sync::Mutex<mpsc::Receiver<Resume>>,
}

/// A resumer and the resumes it sends, for one execution.
pub fn resume_channel() -> (Resumer, Resumes) {
    // One resume at a time: a second waits until the first was answered.
    let (sender, receiver) = mpsc::channel(1);
    let resumes = Resumes {
        receiver: tokio::sync::Mutex::new(receiver),
    };
    (Resumer { sender }, resumes)
}

impl Resumer {
    /// Resumes the execution's waiting Pause with `inputs` (its `onResume`); why not when
    /// they do not fit its `onResume` (in Kestra's words), or when the execution is gone.
    /// The caller checks first that the execution is PAUSED: a resume sent to a running one
    /// waits for its next Pause.
    pub async fn resume(&self, inputs: Vec<(String, SecretValue)>) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        let gone = || "the execution is no longer running".to_owned();
        self.sender
            .send(Resume { inputs, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// How a pause ended, other than resumed.
pub(crate) enum Unpaused {
    /// Its `timeout` passed first.
    TimedOut(Duration),
    /// The execution was killed.
    Killed,
    /// Nothing can resume it: the execution ends PAUSED.
    Stays,
}

impl Run<'_> {
    /// Pauses the task run (and the execution) until it is resumed or `delay` passes: then
    /// RUNNING again, with the `onResume` values read by `on_resume`.
    pub(crate) async fn pause(
        &self,
        open: &mut OpenRun,
        delay: Option<Duration>,
        on_resume: &[InputDef],
        limit: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<Map<String, Value>, Unpaused> {
        open.run.state = State::Paused;
        self.update(open);
        self.set_state(State::Paused);
        let resumes = self.resumes.as_ref();
        if resumes.is_none() && delay.is_none() && limit.is_none() {
            self.log_on(
                open,
                Level::Warn,
                "Nothing can resume this execution here: it ends PAUSED (give the Pause a delay, \
                 or run the flow on the server, which resumes it through its API)",
            );
            return Err(Unpaused::Stays);
        }
        let never = Duration::MAX;
        let resumed = async {
            let Some(resumes) = resumes else {
                return std::future::pending().await;
            };
            let mut receiver = resumes.receiver.lock().await;
            // Each turn answers one resume; a refused one leaves the task paused.
            loop {
                let Some(resume) = receiver.recv().await else {
                    return std::future::pending().await;
                };
                match Inputs::parse(on_resume, resume.inputs) {
                    Ok(inputs) => {
                        let _ = resume.reply.send(Ok(()));
                        break inputs;
                    }
                    Err(error) => {
                        let _ = resume.reply.send(Err(error.to_string()));
                    }
                }
            }
        };
        let inputs = tokio::select! {
            inputs = resumed => inputs,
            () = tokio::time::sleep(delay.unwrap_or(never)), if delay.is_some() => {
                Inputs::parse(on_resume, Vec::new()).unwrap_or_default()
            }
            () = tokio::time::sleep(limit.unwrap_or(never)), if limit.is_some() => {
                return Err(Unpaused::TimedOut(limit.unwrap_or(never)));
            }
            () = cancel.cancelled() => return Err(Unpaused::Killed),
        };
        inputs.register_in(&self.registry);
        open.run.state = State::Running;
        self.update(open);
        self.set_state(State::Running);
        let mut outputs = Map::new();
        outputs.insert("onResume".into(), Value::Object(inputs.values().clone()));
        Ok(outputs)
    }
}
