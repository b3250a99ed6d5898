//! The delivery worker: one thread, `groupscope-worker`, that owns the queue and the transport.
//!
//! Client calls send [`Command`]s over a channel, so records, flushes, opt-out and shutdown are
//! applied in the order the caller made them. The worker drains every command that is waiting,
//! appends the received records to the queue in one transaction (the durability point of an
//! event: when that transaction commits, a few ms after `track` returns, or at the latest when
//! a `flush` covering it returns), enforces the queue caps, and then sends at most one request
//! before it looks at the channel again.
//!
//! A *flush cycle* starts when a batch is full, the flush interval passed, or a flush or
//! shutdown is waiting. It sends batches endpoint by endpoint (`/track`, `/engage`, `/groups`,
//! `/import`) until the queue is empty or `max_attempts_per_cycle` requests failed. Between
//! failed attempts, and between cycles, the worker waits for the backoff deadline from
//! [`crate::retry`].
//!
//! The worker is busy in the sense of [`crate::fork::ForkGate`] except while it waits on the
//! channel, sleeps or waits on an HTTP request, so a process can park it before `fork()`.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::batch::{self, Packing};
use crate::completion::Completion;
use crate::config::Config;
use crate::fork::ForkGate;
use crate::protocol::Endpoint;
use crate::queue::{Queue, Record, StoredRecord, endpoint_index};
use crate::retry::{self, Backoff, Decision, Outcome};
use crate::stats::{Counters, DropCallback, DropReason, DropReport};
use crate::transport::{self, Request, Transport};

/// The worker thread's name.
pub(crate) const THREAD_NAME: &str = "groupscope-worker";

/// The name of the threads that send the worker's requests while it prepares the next one.
const SENDER_THREAD_NAME: &str = "groupscope-sender";

/// How many requests may be in flight at once. A second request keeps the server busy while
/// the worker reads the first response and encodes the next batch. It is sent only while every
/// response so far was a success, and only with a full batch.
const MAX_REQUESTS_IN_FLIGHT: usize = 2;

/// How many batches one step sends before the worker takes in new commands again.
const MAX_BATCHES_PER_STEP: usize = 4;

/// How often the worker retries writing records that the store rejected.
const STORAGE_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// How long the worker lets records accumulate after a burst of records that did not fill a
/// batch. It bounds the extra delay of a record; flushes and shutdowns are not delayed.
const COALESCE_DELAY: Duration = Duration::from_millis(1);

/// How many commands the worker handles before it stores what it received and sends a batch.
/// While callers record faster than the network delivers, each burst ends at this bound, so it
/// sets how often a batch goes out: 512 commands take the worker some tens of microseconds,
/// about as long as preparing one request.
const MAX_COMMANDS_PER_BURST: usize = 512;

/// How many `$insert_id`s a drop warning lists before it ends with "and N more".
const LOGGED_INSERT_IDS: usize = 5;

/// A request from the client to the worker.
pub(crate) enum Command {
    /// Queue one record.
    Enqueue(Record),
    /// Complete with `true` once every record sent before this command was acknowledged or
    /// dropped, or with `false` when a flush cycle ends with records still queued.
    Flush(Arc<Completion>),
    /// Clear the queue and send nothing until [`Command::OptIn`].
    OptOut,
    /// Resume sending.
    OptIn,
    /// Deliver what is queued until `deadline`, then stop.
    Shutdown {
        /// When the worker stops trying.
        deadline: Instant,
        /// Completed with whether the queue ended empty.
        done: Arc<Completion>,
    },
}

/// State the client and the worker share.
pub(crate) struct Shared {
    /// Counters read by `Client::stats`.
    pub stats: Counters,
    /// The user's drop callback.
    pub on_drop: Option<Arc<dyn DropCallback>>,
}

impl Shared {
    /// Counts, logs and reports one drop decision. A panicking callback is caught and logged.
    pub(crate) fn report(&self, reason: DropReason, count: u64, insert_ids: Vec<String>) {
        self.stats.count_drop(&reason, count);

        let shown: Vec<&str> = insert_ids
            .iter()
            .take(LOGGED_INSERT_IDS)
            .map(String::as_str)
            .collect();
        let more = insert_ids.len().saturating_sub(LOGGED_INSERT_IDS);
        let ids = if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        };
        match reason {
            DropReason::Unauthorized { .. } => {
                log::error!(
                    "Dropped {count} records because {reason}; check the token or import_credentials. $insert_ids: [{ids}]"
                )
            }
            _ => log::warn!("Dropped {count} records because {reason}. $insert_ids: [{ids}]"),
        }

        let Some(callback) = &self.on_drop else {
            return;
        };
        let report = DropReport {
            reason,
            count,
            insert_ids,
        };
        if catch_unwind(AssertUnwindSafe(|| callback.on_drop(&report))).is_err() {
            log::error!(
                "The on_drop callback panicked while handling a report of {count} dropped records; delivery continues"
            );
        }
    }
}

/// Delivery settings taken from a validated [`Config`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    urls: [String; 4],
    import_authorization: String,
    batch_sizes: [usize; 4],
    max_bytes: [usize; 4],
    flush_interval: Duration,
    max_queue_records: usize,
    max_queue_bytes: usize,
    backoff: Backoff,
    max_attempts_per_cycle: u32,
    gzip: bool,
}

impl Settings {
    /// Derives the settings from a validated configuration.
    pub(crate) fn from_config(config: &Config) -> Settings {
        let url = |endpoint| {
            transport::endpoint_url(&config.api_host, endpoint, config.project_id.as_deref())
        };
        Settings {
            urls: Endpoint::ALL.map(url),
            import_authorization: transport::import_authorization(
                &config.token,
                config.import_credentials.as_deref(),
            ),
            batch_sizes: [
                config.batch_size,
                config.batch_size,
                config.batch_size,
                config.import_batch_size,
            ],
            max_bytes: [
                config.max_request_bytes,
                config.max_request_bytes,
                config.max_request_bytes,
                config.max_import_request_bytes,
            ],
            flush_interval: config.flush_interval,
            max_queue_records: config.max_queue_records,
            max_queue_bytes: config.max_queue_bytes,
            backoff: Backoff {
                initial: config.initial_retry_delay,
                max: config.max_retry_delay,
            },
            max_attempts_per_cycle: config.max_attempts_per_cycle,
            gzip: config.gzip,
        }
    }

    fn batch_size(&self, endpoint: Endpoint) -> usize {
        self.batch_sizes[endpoint_index(endpoint)]
    }

    /// Records held in memory while the store cannot be written.
    fn max_overflow_records(&self) -> usize {
        self.max_queue_records.min(10_000)
    }
}

/// A flush waiting for records up to `up_to` to settle.
struct Waiter {
    /// The newest queued id when the flush arrived; `None` when the queue was empty.
    up_to: Option<i64>,
    /// Whether records were held in memory when the flush arrived.
    overflow_pending: bool,
    done: Arc<Completion>,
}

/// A batch read from the queue and encoded as a request.
struct PreparedBatch {
    batch: Vec<StoredRecord>,
    request: Request,
}

/// The effect of a response on its batch, as far as sending more requests is concerned.
enum Settled {
    Acknowledged,
    Retrying,
    Other,
}

/// A request handed to the sender threads, with no response yet.
struct InFlight {
    sequence: u64,
    batch: Vec<StoredRecord>,
}

/// The threads, `groupscope-sender`, that send requests for the worker, each over its own
/// connection.
struct Senders {
    requests: crossbeam_channel::Sender<(u64, Request)>,
    outcomes: Receiver<(u64, Outcome)>,
    next_sequence: u64,
}

impl Senders {
    /// Starts one thread per transport. The threads end when the worker drops `requests`.
    fn spawn(transports: Vec<Box<dyn Transport>>) -> std::io::Result<Senders> {
        let (requests, pending) = crossbeam_channel::unbounded::<(u64, Request)>();
        let (finished, outcomes) = crossbeam_channel::unbounded::<(u64, Outcome)>();
        for mut transport in transports {
            let pending = pending.clone();
            let finished = finished.clone();
            std::thread::Builder::new()
                .name(SENDER_THREAD_NAME.to_owned())
                .spawn(move || {
                    for (sequence, request) in pending {
                        let outcome = catch_unwind(AssertUnwindSafe(|| transport.send(&request)))
                            .unwrap_or_else(|_| {
                                log::error!("The HTTP transport panicked; the batch stays queued");
                                Outcome::NetworkError("the HTTP transport panicked".to_owned())
                            });
                        if finished.send((sequence, outcome)).is_err() {
                            break;
                        }
                    }
                })?;
        }
        Ok(Senders {
            requests,
            outcomes,
            next_sequence: 0,
        })
    }
}

/// The worker's state; runs on its own thread.
pub(crate) struct Worker {
    receiver: Receiver<Command>,
    queue: Box<dyn Queue>,
    transport: Box<dyn Transport>,
    /// The sender threads; `None` until a step has more than one batch to send, and when
    /// the transport cannot send concurrently (`senders_unavailable`).
    senders: Option<Senders>,
    senders_unavailable: bool,
    settings: Settings,
    shared: Arc<Shared>,
    /// Records received in this burst, not yet stored.
    incoming: Vec<Record>,
    /// Records received from the channel since the counters were last updated: all of them,
    /// and the ones kept (not dropped because the client opted out).
    received: (u64, u64),
    /// Records the store rejected, retried every [`STORAGE_RETRY_INTERVAL`].
    overflow: VecDeque<Record>,
    last_storage_attempt: Option<Instant>,
    opted_out: bool,
    waiters: Vec<Waiter>,
    /// Consecutive failed attempts, for the backoff.
    failures: u32,
    /// No request before this instant.
    retry_at: Option<Instant>,
    /// Failed attempts in the running flush cycle; `None` when no cycle runs.
    cycle_attempts: Option<u32>,
    /// When the flush interval of the oldest unsent record ends.
    timer: Option<Instant>,
    /// Per-endpoint batch sizes, halved by each 413 response until the endpoint's queue is empty.
    batch_limits: [usize; 4],
    shutdown: Option<(Instant, Arc<Completion>)>,
    rng: fastrand::Rng,
    fork_gate: Arc<ForkGate>,
}

impl Worker {
    /// Creates a worker over `queue`; `initially_opted_out` is the persisted flag.
    pub(crate) fn new(
        receiver: Receiver<Command>,
        queue: Box<dyn Queue>,
        transport: Box<dyn Transport>,
        settings: Settings,
        shared: Arc<Shared>,
        initially_opted_out: bool,
    ) -> Worker {
        let batch_limits = settings.batch_sizes;
        Worker {
            receiver,
            queue,
            transport,
            senders: None,
            senders_unavailable: false,
            settings,
            shared,
            incoming: Vec::new(),
            received: (0, 0),
            overflow: VecDeque::new(),
            last_storage_attempt: None,
            opted_out: initially_opted_out,
            waiters: Vec::new(),
            failures: 0,
            retry_at: None,
            cycle_attempts: None,
            timer: None,
            batch_limits,
            shutdown: None,
            rng: fastrand::Rng::new(),
            fork_gate: Arc::default(),
        }
    }

    /// Returns the gate that parks this worker around `fork()`.
    pub(crate) fn fork_gate(&self) -> Arc<ForkGate> {
        self.fork_gate.clone()
    }

    /// Starts the worker thread. `reports` are drop reports found before the worker started,
    /// for example a store reset; they reach the callback on the worker thread.
    pub(crate) fn spawn(self, reports: Vec<DropReport>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                let fork_gate = self.fork_gate.clone();
                let _busy = fork_gate.enter_busy();
                for report in reports {
                    self.shared
                        .report(report.reason, report.count, report.insert_ids);
                }
                self.run();
            })
    }

    fn run(mut self) {
        log::info!(
            "The delivery worker started with {} queued records",
            self.queue.len()
        );
        if !self.queue.is_empty() && !self.opted_out {
            self.timer = Some(retry::instant_after(
                Instant::now(),
                self.settings.flush_interval,
            ));
        }
        self.publish_queued();

        // Whether the last burst contained only records.
        let mut idle_records = false;
        loop {
            if idle_records && self.waiters.is_empty() && !self.wants_cycle(Instant::now()) {
                // Records trickle in one call at a time. While this thread sleeps instead of
                // waiting on the channel, callers' sends do not wake it, and the records that
                // accumulate are stored in one transaction.
                self.fork_gate
                    .wait_outside(|| std::thread::sleep(COALESCE_DELAY));
            }

            let deadline = self.next_deadline();
            let receiver = &self.receiver;
            let received = self.fork_gate.wait_outside(|| match deadline {
                Some(deadline) => receiver.recv_deadline(deadline),
                None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            });
            idle_records = false;
            match received {
                Ok(command) => {
                    let mut records_only = matches!(command, Command::Enqueue(_));
                    self.handle(command);
                    for _ in 0..MAX_COMMANDS_PER_BURST {
                        match self.receiver.try_recv() {
                            Ok(command) => {
                                records_only &= matches!(command, Command::Enqueue(_));
                                self.handle(command);
                            }
                            Err(_) => break,
                        }
                    }
                    idle_records = records_only;
                    self.publish_received();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if self.shutdown.is_none() {
                        log::debug!("The client was dropped without shutdown; stopping the worker");
                        self.shutdown = Some((Instant::now(), Completion::new()));
                    }
                }
            }

            self.store_incoming();
            self.settle_waiters();
            if self.shutdown.is_some() {
                self.finish();
                return;
            }
            self.step();
            self.settle_waiters();
            self.publish_queued();
        }
    }

    /// Returns when the worker must wake up even if no command arrives.
    fn next_deadline(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut deadline: Option<Instant> = None;
        let mut consider = |at: Instant| deadline = Some(deadline.map_or(at, |d| d.min(at)));

        if !self.overflow.is_empty() {
            consider(
                self.last_storage_attempt
                    .map_or(now, |t| retry::instant_after(t, STORAGE_RETRY_INTERVAL)),
            );
        }
        if !self.opted_out && !self.queue.is_empty() {
            let ready = if self.cycle_attempts.is_some() || self.wants_cycle(now) {
                now
            } else {
                self.timer
                    .unwrap_or_else(|| retry::instant_after(now, self.settings.flush_interval))
            };
            consider(self.retry_at.map_or(ready, |at| at.max(ready)));
        }
        deadline
    }

    fn handle(&mut self, command: Command) {
        if !matches!(command, Command::Enqueue(_)) {
            // The other commands can store or drop the records received so far.
            self.publish_received();
        }
        match command {
            Command::Enqueue(record) => {
                // The counters are updated once per burst (`publish_received`), because callers
                // write the same cache line for every record.
                self.received.0 += 1;
                if !self.opted_out {
                    self.received.1 += 1;
                }
                if self.opted_out {
                    let insert_ids = record.insert_id.into_iter().collect();
                    self.shared.report(DropReason::OptedOut, 1, insert_ids);
                } else {
                    self.incoming.push(record);
                }
            }
            Command::Flush(done) => {
                self.store_incoming();
                self.waiters.push(Waiter {
                    up_to: self.queue.newest_id(),
                    overflow_pending: !self.overflow.is_empty(),
                    done,
                });
            }
            Command::OptOut => {
                self.store_incoming();
                self.clear_for_opt_out();
            }
            Command::OptIn => {
                if self.opted_out {
                    log::info!("Sending resumed after opt-in");
                }
                self.opted_out = false;
            }
            Command::Shutdown { deadline, done } => {
                self.store_incoming();
                match &self.shutdown {
                    Some((_, first)) => {
                        let first = first.clone();
                        std::thread::spawn(move || {
                            if let Some(result) = first.wait(Duration::from_secs(3600)) {
                                done.complete(result);
                            }
                        });
                    }
                    None => self.shutdown = Some((deadline, done)),
                }
            }
        }
    }

    /// Moves the records received since the last call from the channel's count to the
    /// worker's.
    fn publish_received(&mut self) {
        let (received, kept) = std::mem::take(&mut self.received);
        if received > 0 {
            self.shared.stats.in_worker.fetch_add(kept, Ordering::Relaxed);
            self.shared.stats.in_channel.fetch_sub(received, Ordering::Relaxed);
        }
    }

    fn clear_for_opt_out(&mut self) {
        self.opted_out = true;
        self.cycle_attempts = None;
        self.retry_at = None;
        self.timer = None;

        let mut insert_ids: Vec<String> = Vec::new();
        let mut count = 0u64;
        for record in self.overflow.drain(..) {
            count += 1;
            insert_ids.extend(record.insert_id);
        }
        match self.queue.clear() {
            Ok(cleared) => {
                count += cleared.len() as u64;
                insert_ids.extend(
                    cleared
                        .into_iter()
                        .filter_map(|stored| stored.record.insert_id),
                );
            }
            Err(error) => log::warn!(
                "Could not clear the queue at opt-out: {error}; nothing is sent while opted out"
            ),
        }
        log::info!("Opted out; cleared {count} queued records");
        if count > 0 {
            self.shared.report(DropReason::OptedOut, count, insert_ids);
        }
        self.publish_queued();
        for waiter in self.waiters.drain(..) {
            waiter.done.complete(true);
        }
    }

    /// Appends held and received records to the queue in one transaction, then applies caps.
    fn store_incoming(&mut self) {
        if self.incoming.is_empty() && self.overflow.is_empty() {
            return;
        }
        if self.incoming.is_empty()
            && self
                .last_storage_attempt
                .is_some_and(|t| t.elapsed() < STORAGE_RETRY_INTERVAL)
        {
            return;
        }

        let mut records: Vec<Record> = self.overflow.drain(..).collect();
        records.append(&mut self.incoming);
        self.last_storage_attempt = Some(Instant::now());

        let appended = !records.is_empty();
        match self.queue.append_owned(records) {
            Ok(()) => {
                if appended && self.timer.is_none() {
                    self.timer = Some(retry::instant_after(
                        Instant::now(),
                        self.settings.flush_interval,
                    ));
                }
                let newest = self.queue.newest_id();
                for waiter in self.waiters.iter_mut().filter(|w| w.overflow_pending) {
                    waiter.overflow_pending = false;
                    waiter.up_to = newest;
                }
                self.enforce_caps();
            }
            Err((error, records)) => {
                log::warn!(
                    "Could not store {} records: {error}; holding them in memory and retrying",
                    records.len()
                );
                self.overflow = records.into();
                let cap = self.settings.max_overflow_records();
                if self.overflow.len() > cap {
                    let excess = self.overflow.len() - cap;
                    let dropped: Vec<Record> = self.overflow.drain(..excess).collect();
                    self.shared
                        .stats
                        .in_worker
                        .fetch_sub(excess as u64, Ordering::Relaxed);
                    let ids = dropped.into_iter().filter_map(|r| r.insert_id).collect();
                    self.shared
                        .report(DropReason::StorageUnavailable, excess as u64, ids);
                }
            }
        }
    }

    fn enforce_caps(&mut self) {
        match self.queue.evict_to_fit(
            self.settings.max_queue_records,
            self.settings.max_queue_bytes,
        ) {
            Ok(evicted) if !evicted.is_empty() => {
                self.drop_reported(evicted, DropReason::QueueFull, false)
            }
            Ok(_) => {}
            Err(error) => log::warn!("Could not evict records over the queue caps: {error}"),
        }
    }

    /// Whether a flush cycle should start now (ignoring the backoff deadline).
    fn wants_cycle(&self, now: Instant) -> bool {
        !self.waiters.is_empty()
            || self.shutdown.is_some()
            || self.settings.flush_interval.is_zero()
            || self.timer.is_some_and(|timer| timer <= now)
            || Endpoint::ALL
                .iter()
                .any(|&endpoint| self.queue.len_for(endpoint) >= self.settings.batch_size(endpoint))
    }

    /// Sends at most one request if a cycle runs or should start.
    fn step(&mut self) {
        if self.opted_out || self.queue.is_empty() {
            if self.cycle_attempts.is_some() {
                self.end_cycle();
            }
            return;
        }
        let now = Instant::now();
        if self.retry_at.is_some_and(|at| at > now) {
            return;
        }
        if !self.wants_cycle(now) {
            // A cycle started because a batch was full stops at the first partial batch, which
            // waits for the flush interval.
            if self.cycle_attempts.is_some() {
                self.end_cycle();
            }
            return;
        }
        if self.cycle_attempts.is_none() {
            log::debug!(
                "Flush cycle started with {} queued records",
                self.queue.len()
            );
            self.cycle_attempts = Some(0);
        }

        let Some(endpoint) = Endpoint::ALL
            .into_iter()
            .find(|&e| self.queue.len_for(e) > 0)
        else {
            self.end_cycle();
            return;
        };
        // Shutdown sends one request at a time, so its deadline bounds a single request.
        let max_batches = if self.shutdown.is_some() {
            1
        } else {
            MAX_BATCHES_PER_STEP
        };
        self.send_batches(endpoint, max_batches);
        if self.queue.is_empty() {
            self.end_cycle();
        }
    }

    /// Ends the running flush cycle. Flushes still waiting complete with `false`, because the
    /// records they wait for stay queued until a later cycle.
    fn end_cycle(&mut self) {
        self.cycle_attempts = None;
        self.settle_waiters();
        if !self.queue.is_empty() {
            for waiter in self.waiters.drain(..) {
                waiter.done.complete(false);
            }
            let now = Instant::now();
            if self.timer.is_none_or(|timer| timer <= now) {
                self.timer = Some(retry::instant_after(now, self.settings.flush_interval));
            }
        } else {
            self.timer = None;
        }
    }

    /// Sends one request on the worker's thread.
    fn send_batch(&mut self, endpoint: Endpoint) {
        let Some(prepared) = self.prepare(endpoint) else {
            return;
        };
        let transport = &mut self.transport;
        let outcome = self
            .fork_gate
            .wait_outside(|| transport.send(&prepared.request));
        self.settle_outcome(endpoint, &prepared.batch, &outcome);
    }

    /// Sends up to `max_batches` batches of `endpoint`, with up to [`MAX_REQUESTS_IN_FLIGHT`]
    /// requests in flight, and returns once every request got its outcome. Outcomes are
    /// applied in the order the requests were sent, as if they had been sent one by one.
    fn send_batches(&mut self, endpoint: Endpoint, max_batches: usize) {
        // Profile operations ($union then $remove, say) do not commute, and the server may
        // apply two concurrent requests in either order, so only events go two at a time.
        if !endpoint.is_event() {
            self.send_batch(endpoint);
            return;
        }
        // The sender threads start once a backlog needs a second request, so a client that
        // sends little keeps one thread and one connection.
        let backlog = self.queue.len_for(endpoint) > self.batch_limits[endpoint_index(endpoint)];
        let concurrent = self.senders.is_some() || (backlog && self.start_senders());
        if max_batches <= 1 || !concurrent {
            self.send_batch(endpoint);
            return;
        }
        let Some(senders) = &self.senders else {
            return;
        };
        let (requests, outcomes) = (senders.requests.clone(), senders.outcomes.clone());

        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        // Outcomes that arrived before the outcome of an earlier request.
        let mut early: Vec<(u64, Outcome)> = Vec::new();
        let mut sent = 0;
        let mut all_acknowledged = true;
        // The backoff of a failed request, which a later success in this step must not cancel.
        let mut backoff_after_failure: Option<(u32, Option<Instant>)> = None;
        loop {
            while sent < max_batches
                && in_flight.len() < MAX_REQUESTS_IN_FLIGHT
                && (sent == 0 || self.may_send_more(all_acknowledged))
            {
                let prepared = if sent == 0 {
                    self.prepare(endpoint)
                } else {
                    self.prepare_full_after(endpoint, &in_flight)
                };
                let Some(prepared) = prepared else {
                    break;
                };
                let sequence = self.next_sequence();
                if let Err(error) = requests.send((sequence, prepared.request)) {
                    let outcome = Outcome::NetworkError("the sender threads stopped".to_owned());
                    early.push((error.into_inner().0, outcome));
                }
                in_flight.push_back(InFlight {
                    sequence,
                    batch: prepared.batch,
                });
                sent += 1;
            }

            let Some(head) = in_flight.pop_front() else {
                break;
            };
            let outcome = loop {
                if let Some(index) = early.iter().position(|(sequence, _)| *sequence == head.sequence) {
                    break early.swap_remove(index).1;
                }
                match self.fork_gate.wait_outside(|| outcomes.recv()) {
                    Ok(outcome) => early.push(outcome),
                    Err(_) => break Outcome::NetworkError("the sender threads stopped".to_owned()),
                }
            };
            match self.settle_outcome(endpoint, &head.batch, &outcome) {
                Settled::Acknowledged => {}
                Settled::Retrying => {
                    all_acknowledged = false;
                    backoff_after_failure = Some((self.failures, self.retry_at));
                }
                Settled::Other => all_acknowledged = false,
            }
        }

        if let Some((failures, retry_at)) = backoff_after_failure {
            if self.failures == 0 && self.retry_at.is_none() {
                self.failures = failures;
                self.retry_at = retry_at;
            }
        }
    }

    /// Returns whether a step may send another request while one is in flight: only while
    /// every outcome so far was a success and a flush cycle runs.
    fn may_send_more(&self, all_acknowledged: bool) -> bool {
        all_acknowledged
            && !self.opted_out
            && self.failures == 0
            && self.retry_at.is_none()
            && self.cycle_attempts.is_some()
    }

    fn next_sequence(&mut self) -> u64 {
        let senders = self.senders.as_mut().expect("the senders were started");
        senders.next_sequence += 1;
        senders.next_sequence
    }

    /// Starts the sender threads unless the transport cannot send concurrently; returns
    /// whether they run.
    fn start_senders(&mut self) -> bool {
        if self.senders_unavailable {
            return false;
        }
        let transports: Option<Vec<Box<dyn Transport>>> = (0..MAX_REQUESTS_IN_FLIGHT)
            .map(|_| self.transport.try_clone())
            .collect();
        let Some(transports) = transports else {
            self.senders_unavailable = true;
            return false;
        };
        match Senders::spawn(transports) {
            Ok(senders) => {
                self.senders = Some(senders);
                true
            }
            Err(error) => {
                log::warn!("Could not start the sender threads: {error}; sending one request at a time");
                self.senders_unavailable = true;
                false
            }
        }
    }

    /// Reads and encodes the first batch queued for `endpoint`. Drops an oversized first
    /// record, and returns `None` when there is nothing to send.
    fn prepare(&mut self, endpoint: Endpoint) -> Option<PreparedBatch> {
        let max_records = self.batch_limits[endpoint_index(endpoint)];
        let records = match self.queue.front(endpoint, max_records) {
            Ok(records) => records,
            Err(error) => {
                log::warn!("Could not read the queue: {error}; retrying later");
                self.retry_at = Some(retry::instant_after(Instant::now(), STORAGE_RETRY_INTERVAL));
                self.end_cycle();
                return None;
            }
        };
        match self.pack(endpoint, &records) {
            Packing::Empty => None,
            Packing::Oversized => {
                let oversized = records.into_iter().take(1).collect();
                self.drop_reported(oversized, DropReason::TooLarge, true);
                None
            }
            Packing::Batch { count } => Some(self.encode(endpoint, records, count)),
        }
    }

    /// Encodes the batch queued after the records of `in_flight`, when it is full. Returns
    /// `None` when the queue no longer starts with the records in flight, or on an error,
    /// which the next [`Worker::prepare`] reports.
    fn prepare_full_after(&mut self, endpoint: Endpoint, in_flight: &VecDeque<InFlight>) -> Option<PreparedBatch> {
        let max_records = self.batch_limits[endpoint_index(endpoint)];
        let skip: usize = in_flight.iter().map(|sent| sent.batch.len()).sum();
        let mut records = self.queue.front(endpoint, skip + max_records + 1).ok()?;
        let sent_ids = in_flight.iter().flat_map(|sent| sent.batch.iter().map(|stored| stored.id));
        if records.len() <= skip || !records.iter().take(skip).map(|stored| stored.id).eq(sent_ids) {
            return None;
        }

        let records = records.split_off(skip);
        match self.pack(endpoint, &records) {
            // A batch cut short by the end of the queue waits for more records instead.
            Packing::Batch { count } if count < records.len() || count == max_records => {
                Some(self.encode(endpoint, records, count))
            }
            _ => None,
        }
    }

    fn pack(&self, endpoint: Endpoint, records: &[StoredRecord]) -> Packing {
        let index = endpoint_index(endpoint);
        let lens: Vec<usize> = records
            .iter()
            .map(|stored| stored.record.body.len())
            .collect();
        batch::pack_first(&lens, self.batch_limits[index], self.settings.max_bytes[index])
    }

    fn encode(&self, endpoint: Endpoint, mut records: Vec<StoredRecord>, count: usize) -> PreparedBatch {
        let index = endpoint_index(endpoint);
        records.truncate(count);

        let plain = batch::encode_body(records.iter().map(|stored| &*stored.record.body));
        let plain_len = plain.len();
        let (body, gzip) = match self
            .settings
            .gzip
            .then(|| batch::gzip_if_smaller(&plain))
            .flatten()
        {
            Some(compressed) => (compressed, true),
            None => (plain, false),
        };
        log::debug!(
            "Sending {count} records to {} ({plain_len} bytes, {} on the wire)",
            endpoint.path(),
            body.len()
        );
        let request = Request {
            endpoint,
            url: self.settings.urls[index].clone(),
            authorization: (endpoint == Endpoint::Import)
                .then(|| self.settings.import_authorization.clone()),
            body,
            gzip,
        };
        PreparedBatch {
            batch: records,
            request,
        }
    }

    /// Decides what `outcome` means for `batch` and applies it.
    fn settle_outcome(&mut self, endpoint: Endpoint, batch: &[StoredRecord], outcome: &Outcome) -> Settled {
        let decision = retry::decide(
            endpoint,
            outcome,
            batch.len(),
            self.failures + 1,
            self.settings.backoff,
            self.rng.f64(),
            SystemTime::now(),
        );
        let settled = match &decision {
            Decision::Acknowledge => Settled::Acknowledged,
            Decision::Retry { .. } => Settled::Retrying,
            _ => Settled::Other,
        };
        self.apply(endpoint, batch, decision);
        settled
    }

    fn apply(&mut self, endpoint: Endpoint, batch: &[StoredRecord], decision: Decision) {
        let index = endpoint_index(endpoint);
        let count = batch.len();

        match decision {
            Decision::Acknowledge => {
                self.settle_sent(batch.to_vec());
            }
            Decision::AcknowledgePartial { message } => {
                self.shared
                    .stats
                    .partially_rejected_batches
                    .fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "{} stored a batch of {count} records but returned the error {message:?} without failed_records, so some of them may be lost",
                    endpoint.path()
                );
                self.settle_sent(batch.to_vec());
            }
            Decision::Retry {
                delay,
                cause,
                wrong_url,
            } => {
                self.failures += 1;
                self.shared.stats.retried.fetch_add(1, Ordering::Relaxed);
                self.retry_at = Some(retry::instant_after(Instant::now(), delay));
                let attempts = self.cycle_attempts.map_or(1, |a| a + 1);
                self.cycle_attempts = Some(attempts);
                if wrong_url && attempts == 1 {
                    log::error!(
                        "{} answered {cause}, so the host or path prefix is wrong; check api_host. The records stay queued and are retried",
                        self.settings.urls[index]
                    );
                }
                log::warn!(
                    "Sending {count} records to {} failed ({cause}); attempt {attempts} of {} in this cycle, next try in {delay:?}",
                    endpoint.path(),
                    self.settings.max_attempts_per_cycle
                );
                if attempts >= self.settings.max_attempts_per_cycle {
                    log::warn!(
                        "Flush cycle ended after {attempts} failed attempts; {} records stay queued",
                        self.queue.len()
                    );
                    self.end_cycle();
                }
            }
            Decision::Split => {
                let smaller = (count / 2).max(1);
                log::warn!(
                    "{} answered 413 to {count} records; sending batches of {smaller}",
                    endpoint.path()
                );
                self.batch_limits[index] = smaller;
            }
            Decision::DropTooLarge => {
                self.failures = 0;
                self.retry_at = None;
                self.drop_reported(batch.to_vec(), DropReason::TooLarge, true);
            }
            Decision::DropRejected { status, message } => {
                self.failures = 0;
                self.retry_at = None;
                self.drop_reported(
                    batch.to_vec(),
                    DropReason::Rejected { status, message },
                    true,
                );
            }
            Decision::DropUnauthorized { status } => {
                self.failures = 0;
                self.retry_at = None;
                self.drop_reported(batch.to_vec(), DropReason::Unauthorized { status }, true);
            }
            Decision::DropFailedRecords {
                status,
                failed,
                message,
            } => {
                let mut accepted = Vec::new();
                let mut rejected = Vec::new();
                for (i, stored) in batch.iter().enumerate() {
                    let named = failed.iter().any(|f| {
                        f.index == Some(i)
                            || (f.insert_id.is_some() && f.insert_id == stored.record.insert_id)
                    });
                    if named {
                        rejected.push(stored.clone());
                    } else {
                        accepted.push(stored.clone());
                    }
                }
                self.settle_sent(accepted);
                self.drop_reported(rejected, DropReason::Rejected { status, message }, true);
            }
        }

        if self.queue.len_for(endpoint) == 0 {
            self.batch_limits[index] = self.settings.batch_size(endpoint);
        }
    }

    /// Removes acknowledged records and counts them as delivered.
    fn settle_sent(&mut self, acknowledged: Vec<StoredRecord>) {
        self.failures = 0;
        self.retry_at = None;
        let ids: Vec<i64> = acknowledged.iter().map(|stored| stored.id).collect();
        if let Err(error) = self.queue.remove(&ids) {
            log::warn!(
                "Could not remove {} delivered records from the queue: {error}; they may be sent again and are deduplicated by $insert_id",
                ids.len()
            );
            return;
        }
        self.shared
            .stats
            .delivered
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        self.shared
            .stats
            .in_worker
            .fetch_sub(ids.len() as u64, Ordering::Relaxed);
    }

    /// Reports records as dropped and removes them from the queue unless they are gone already.
    fn drop_reported(&mut self, records: Vec<StoredRecord>, reason: DropReason, remove: bool) {
        if records.is_empty() {
            return;
        }
        if remove {
            let ids: Vec<i64> = records.iter().map(|stored| stored.id).collect();
            if let Err(error) = self.queue.remove(&ids) {
                log::warn!(
                    "Could not remove {} dropped records from the queue: {error}",
                    ids.len()
                );
                return;
            }
        }
        let count = records.len() as u64;
        self.shared
            .stats
            .in_worker
            .fetch_sub(count, Ordering::Relaxed);
        let insert_ids = records
            .into_iter()
            .filter_map(|stored| stored.record.insert_id)
            .collect();
        self.shared.report(reason, count, insert_ids);
    }

    /// Completes the flushes whose records all settled.
    fn settle_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let oldest = self.queue.oldest_id();
        let overflow_empty = self.overflow.is_empty();
        self.waiters.retain(|waiter| {
            let queue_settled = match (waiter.up_to, oldest) {
                (Some(up_to), Some(oldest)) => oldest > up_to,
                _ => true,
            };
            let settled = queue_settled && (overflow_empty || !waiter.overflow_pending);
            if settled {
                waiter.done.complete(true);
            }
            !settled
        });
    }

    fn publish_queued(&self) {
        let held = (self.queue.len() + self.overflow.len() + self.incoming.len()) as u64;
        self.shared.stats.in_worker.store(held, Ordering::Relaxed);
    }

    /// Reports the undelivered records that only memory holds: the whole queue when it is
    /// not durable, and the overflow buffer of a store that could not be written.
    fn report_lost_at_shutdown(&mut self) {
        let mut lost: Vec<Record> = self.overflow.drain(..).collect();
        if !self.queue.is_durable() {
            match self.queue.clear() {
                Ok(stored) => lost.extend(stored.into_iter().map(|stored| stored.record)),
                Err(error) => log::warn!("Could not read the queue at shutdown: {error}"),
            }
        }
        let kept = self.queue.len();
        if kept > 0 {
            log::warn!(
                "The worker stopped with {kept} records not delivered; the store keeps them for the next start"
            );
        }
        if lost.is_empty() {
            return;
        }

        let insert_ids = lost.iter().filter_map(|record| record.insert_id.clone()).collect();
        self.shared.report(DropReason::ShutDown, lost.len() as u64, insert_ids);
    }

    /// Delivers until the queue is empty, `max_attempts_per_cycle` attempts failed, or the
    /// shutdown deadline passes.
    fn finish(&mut self) {
        let Some((deadline, done)) = self.shutdown.take() else {
            return;
        };
        self.shutdown = Some((deadline, done.clone()));

        // Shutdown runs at most one flush cycle's worth of failed attempts.
        let retried_before = self.shared.stats.retried.load(Ordering::Relaxed);
        loop {
            let waiting: Vec<Command> = self
                .receiver
                .try_iter()
                .take(MAX_COMMANDS_PER_BURST)
                .collect();
            for command in waiting {
                self.handle(command);
            }
            self.publish_received();
            self.store_incoming();
            self.settle_waiters();
            if self.opted_out || self.queue.is_empty() {
                break;
            }

            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if let Some(at) = self.retry_at.filter(|&at| at > now) {
                if at >= deadline {
                    break;
                }
                self.fork_gate.wait_outside(|| std::thread::sleep(at - now));
            }

            self.step();
            let failed = self.shared.stats.retried.load(Ordering::Relaxed) - retried_before;
            if failed >= u64::from(self.settings.max_attempts_per_cycle) {
                break;
            }
        }

        let left = self.queue.len() + self.overflow.len();
        let delivered_all = left == 0 || self.opted_out;
        if !delivered_all {
            self.report_lost_at_shutdown();
        }
        self.publish_queued();
        for waiter in self.waiters.drain(..) {
            waiter.done.complete(delivered_all);
        }
        done.complete(delivered_all);
        log::info!("The delivery worker stopped");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::queue::{MemoryQueue, QueueError};
    use crate::retry::Outcome;

    /// Responds 200 to every request and records it.
    struct RecordingTransport(Arc<Mutex<Vec<Request>>>);

    impl Transport for RecordingTransport {
        fn send(&mut self, request: &Request) -> Outcome {
            self.0.lock().unwrap().push(request.clone());
            Outcome::Response {
                status: 200,
                retry_after: None,
                body: "1".to_owned(),
            }
        }
    }

    /// A memory queue whose first `failures` appends fail, like a full disk.
    struct FailingQueue {
        inner: MemoryQueue,
        failures: usize,
    }

    impl Queue for FailingQueue {
        fn append(&mut self, records: &[Record]) -> Result<(), QueueError> {
            if self.failures > 0 {
                self.failures -= 1;
                return Err(QueueError::Transient("database or disk is full".to_owned()));
            }
            self.inner.append(records)
        }
        fn front(
            &mut self,
            endpoint: Endpoint,
            limit: usize,
        ) -> Result<Vec<StoredRecord>, QueueError> {
            self.inner.front(endpoint, limit)
        }
        fn remove(&mut self, ids: &[i64]) -> Result<(), QueueError> {
            self.inner.remove(ids)
        }
        fn evict_to_fit(
            &mut self,
            max_records: usize,
            max_bytes: usize,
        ) -> Result<Vec<StoredRecord>, QueueError> {
            self.inner.evict_to_fit(max_records, max_bytes)
        }
        fn clear(&mut self) -> Result<Vec<StoredRecord>, QueueError> {
            self.inner.clear()
        }
        fn len(&self) -> usize {
            self.inner.len()
        }
        fn len_for(&self, endpoint: Endpoint) -> usize {
            self.inner.len_for(endpoint)
        }
        fn newest_id(&self) -> Option<i64> {
            self.inner.newest_id()
        }
        fn oldest_id(&self) -> Option<i64> {
            self.inner.oldest_id()
        }
    }

    fn record(insert_id: &str) -> Record {
        Record {
            endpoint: Endpoint::Track,
            insert_id: Some(insert_id.to_owned()),
            body: format!(r#"{{"event":"e","properties":{{"$insert_id":"{insert_id}"}}}}"#).into(),
        }
    }

    #[test]
    fn storage_failure_holds_records_until_store_recovers() {
        let mut config = Config::new("token");
        config.api_host = "http://127.0.0.1:9".to_owned();
        config.flush_interval = Duration::from_secs(60);
        config.gzip = false;
        let shared = Arc::new(Shared {
            stats: Counters::default(),
            on_drop: None,
        });
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = crossbeam_channel::unbounded();
        let queue = FailingQueue {
            inner: MemoryQueue::new(),
            failures: 2,
        };
        let worker = Worker::new(
            receiver,
            Box::new(queue),
            Box::new(RecordingTransport(requests.clone())),
            Settings::from_config(&config),
            shared.clone(),
            false,
        );
        let join = worker.spawn(Vec::new()).unwrap();

        for id in ["a", "b", "c"] {
            shared.stats.in_channel.fetch_add(1, Ordering::Relaxed);
            sender.send(Command::Enqueue(record(id))).unwrap();
        }
        let flushed = Completion::new();
        sender.send(Command::Flush(flushed.clone())).unwrap();
        assert_eq!(flushed.wait(Duration::from_secs(10)), Some(true));

        let sent: Vec<Option<String>> = requests
            .lock()
            .unwrap()
            .iter()
            .flat_map(|request| {
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                body.as_array()
                    .unwrap()
                    .iter()
                    .map(|event| {
                        event["properties"]["$insert_id"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(sent, [Some("a".into()), Some("b".into()), Some("c".into())]);
        assert_eq!(shared.stats.snapshot().dropped_storage_unavailable, 0);

        let done = Completion::new();
        sender
            .send(Command::Shutdown {
                deadline: Instant::now() + Duration::from_secs(1),
                done: done.clone(),
            })
            .unwrap();
        assert_eq!(done.wait(Duration::from_secs(5)), Some(true));
        join.join().unwrap();
    }
}
