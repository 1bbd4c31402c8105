//! Generation: a fixed set of sessions, each on its own thread with its own
//! state, fed from a bounded queue of jobs. Matrix work of every session
//! runs on the model's worker pool.

use super::metrics::Metrics;
use super::openai::{ApiError, GenerationSettings, Usage};
use super::state_cache::StateCache;
use crate::generate::StopFilter;
use crate::sample::Sampler;
use crate::text::TextCodec;
use eddy::{Model, Session, PREFILL_CHUNK};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Prompt tokens read between two checks for cancellation.
const PREFILL_SLICE: usize = PREFILL_CHUNK * 4;

/// What a job reports back to the HTTP thread that submitted it.
#[derive(Debug)]
pub enum Event {
    /// Generated text (never empty).
    Text(String),
    /// The generation ended: `stop` or `length`.
    Done {
        /// OpenAI `finish_reason`.
        finish_reason: &'static str,
        /// Token counts.
        usage: Usage,
    },
    /// The generation failed (a model error, not the client's).
    Failed(String),
}

/// One generation request.
pub struct Job {
    /// Prompt token ids (validated against the vocabulary).
    pub prompt: Vec<u32>,
    /// Sampling, length and stop settings.
    pub settings: GenerationSettings,
    /// Where events go; a closed receiver cancels the job.
    pub events: Sender<Event>,
    /// Set by the HTTP thread when the client went away.
    pub cancel: Arc<AtomicBool>,
}

/// A job's place among those admitted; given back when the job is done.
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The submitting side of the job queue: admits up to `sessions + waiting`
/// jobs at a time (running or waiting) and refuses more with 503.
pub struct Queue {
    jobs: Mutex<Option<SyncSender<(Job, Admission)>>>,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
}

/// The receiving side of the job queue, shared by the sessions.
pub struct Jobs(Mutex<Receiver<(Job, Admission)>>);

impl Queue {
    /// A queue for `sessions` generating at once and `waiting` more.
    pub fn new(sessions: usize, waiting: usize) -> (Queue, Jobs) {
        let capacity = sessions + waiting;
        let (jobs, rx) = mpsc::sync_channel(capacity);
        let queue = Queue { jobs: Mutex::new(Some(jobs)), admitted: Arc::new(AtomicUsize::new(0)), capacity };
        (queue, Jobs(Mutex::new(rx)))
    }

    /// Take no more jobs: the sessions stop once the queue is empty.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Queue a job, or refuse it with 503 when the queue is full.
    pub fn submit(&self, job: Job, metrics: &Metrics) -> Result<(), ApiError> {
        let busy = || {
            Metrics::bump(&metrics.requests_rejected);
            ApiError::new(503, "server_busy", "every session is busy and the queue is full; retry later")
        };
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        let admission = Admission(self.admitted.clone());
        Metrics::bump(&metrics.queued);
        let sent = match &*self.jobs.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(jobs) => jobs.try_send((job, admission)),
            None => Err(TrySendError::Disconnected((job, admission))),
        };
        match sent {
            Ok(()) => Ok(()),
            Err(e) => {
                Metrics::drop_one(&metrics.queued);
                Err(match e {
                    TrySendError::Full(_) => busy(),
                    TrySendError::Disconnected(_) => {
                        ApiError::new(503, "server_shutting_down", "the server is shutting down")
                    }
                })
            }
        }
    }
}

/// What every generating thread shares.
pub struct Engine<'m, 'a> {
    /// The model.
    pub model: &'m Model<'a>,
    /// Its tokenizer.
    pub codec: &'m TextCodec,
    /// Saved states.
    pub cache: &'m StateCache,
    /// Counters.
    pub metrics: &'m Metrics,
    /// Tokens that end a reply.
    pub eos: &'m [u32],
}

impl Engine<'_, '_> {
    /// Run jobs from `jobs` on one session until the queue closes.
    pub fn worker(&self, jobs: &Jobs) {
        let mut session = Session::new_owned(self.model);
        loop {
            // The admission is held until this job's answer is sent.
            let (job, _admission) = match jobs.0.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                Ok(job) => job,
                Err(_) => return,
            };
            Metrics::drop_one(&self.metrics.queued);
            Metrics::bump(&self.metrics.active_sessions);
            let outcome = self.generate(&mut session, &job);
            Metrics::drop_one(&self.metrics.active_sessions);
            match outcome {
                Ok(Some((finish_reason, usage))) => {
                    Metrics::bump(&self.metrics.generations_finished);
                    let _ = job.events.send(Event::Done { finish_reason, usage });
                }
                Ok(None) => Metrics::bump(&self.metrics.generations_cancelled),
                Err(message) => {
                    let _ = job.events.send(Event::Failed(message));
                }
            }
        }
    }

    /// One generation; `Ok(None)` when the client went away.
    fn generate(
        &self,
        session: &mut eddy::OwnedSession<'_, '_>,
        job: &Job,
    ) -> Result<Option<(&'static str, Usage)>, String> {
        let cancelled = || job.cancel.load(Ordering::Relaxed);
        let prompt = &job.prompt;
        let t0 = Instant::now();
        let cached = self.cache.resume(prompt, |state| session.restore(state).is_ok()).unwrap_or(0);
        if cached == 0 {
            session.reset();
        }
        // The state before the prompt's last token is the one saved: the
        // same prompt sent again (a retry, another sample) then resumes
        // from it and reads one token. Splitting the prefill there does not
        // change the logits.
        let Some((&last, head)) = prompt.split_last() else { return Err("the prompt is empty".into()) };
        for part in head[cached..].chunks(PREFILL_SLICE) {
            if cancelled() {
                return Ok(None);
            }
            session.prefill_chunked(part, PREFILL_CHUNK, false, |_, _| {}).map_err(|e| e.to_string())?;
        }
        self.cache.save(head, session.snapshot());
        session.step(last).map_err(|e| e.to_string())?;
        Metrics::add(&self.metrics.prompt_tokens, prompt.len() as u64);
        Metrics::add(&self.metrics.prompt_tokens_cached, cached as u64);
        Metrics::add(&self.metrics.prefill_micros, t0.elapsed().as_micros() as u64);

        let t1 = Instant::now();
        let mut sampler = Sampler::new(job.settings.sampler);
        let mut stops = StopFilter::new(&job.settings.stop);
        let mut consumed = prompt.clone();
        let mut generated: Vec<u32> = Vec::new();
        let mut finish_reason = "length";
        let mut hit_stop_string = false;
        let mut next = sampler.sample(session.logits());
        while generated.len() < job.settings.max_tokens {
            if cancelled() {
                return Ok(None);
            }
            if !job.settings.ignore_eos && self.eos.contains(&next) {
                finish_reason = "stop";
                break;
            }
            generated.push(next);
            let piece = self.codec.decode_increment(&generated).map_err(|e| e.to_string())?;
            let (text, stopped) = stops.push(&piece);
            if !text.is_empty() && job.events.send(Event::Text(text)).is_err() {
                return Ok(None);
            }
            if stopped {
                finish_reason = "stop";
                hit_stop_string = true;
                break;
            }
            if generated.len() == job.settings.max_tokens {
                break;
            }
            let logits = session.step(next).map_err(|e| e.to_string())?;
            consumed.push(next);
            next = sampler.sample(logits);
        }
        if !hit_stop_string {
            let rest = stops.finish();
            if !rest.is_empty() && job.events.send(Event::Text(rest)).is_err() {
                return Ok(None);
            }
        }
        if consumed.len() > prompt.len() {
            self.cache.save(&consumed, session.snapshot());
        }
        Metrics::add(&self.metrics.completion_tokens, generated.len() as u64);
        Metrics::add(&self.metrics.decode_micros, t1.elapsed().as_micros() as u64);
        let usage =
            Usage { prompt_tokens: prompt.len(), cached_tokens: cached, completion_tokens: generated.len() };
        Ok(Some((finish_reason, usage)))
    }
}
