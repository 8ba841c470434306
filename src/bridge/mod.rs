//! The bridge runtime (`dlms-bridge run`): one thread per meter, one publisher thread, and this
//! supervisor on the main thread, which applies configuration changes live and writes the
//! periodic status lines.
//!
//! ```text
//! meter workers --(bounded crossbeam channel of readings)--> outbox thread --> SQLite outbox
//!                                                              |  ^
//!                                                         work |  | answers
//!                                                              v  |
//!                                                     publisher (mqtt/: core + Paho driver)
//! ```
//! Folders hold one concept each, pure cores beside their thread shells: `mqtt/` (the
//! publisher), `outbox/` (the outbox queue and its thread), `meter/` (a meter's thread and
//! its poll cycle). The supervisor here is the only loop that reads the configuration; it
//! sends every change to the threads that need it.

pub mod alarm_watch;
pub mod event;
pub mod gateway_clock;
pub mod meter;
pub mod mqtt;
pub mod outbox;
pub mod push;
pub mod rpc;

use crate::config::MeterConfig;
use crate::status::state::{MeterState, Status};
use crate::store::{Store, StoreError};
use crossbeam_channel::{bounded, unbounded, Sender};
use log::{info, warn};
use mqtt::{Configuration, Publisher, ToPublisher};
use outbox::OutboxThread;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Readings the channel holds before meter threads wait for the publisher.
const CHANNEL_CAPACITY: usize = 4096;
/// Meter threads do blocking I/O and bounded-depth decoding: a small stack is plenty. Boards
/// set DLMS_BRIDGE_STACK_KIB (board-config/*.env) to go lower on small routers.
fn worker_stack() -> usize {
    std::env::var("DLMS_BRIDGE_STACK_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|k| (64..=8192).contains(k))
        .unwrap_or(256)
        * 1024
}

struct Running {
    config: MeterConfig,
    control: Sender<meter::Control>,
    handle: JoinHandle<()>,
    /// The shared serial line the meter's thread uses, if it shares one.
    bus: Option<Arc<crate::client::bus::Bus>>,
}

/// Runs until `stop` is set, then releases every association, flushes the outbox and returns.
pub fn run(db: &Path, stop: Arc<AtomicBool>, status: Arc<Status>) -> Result<(), StoreError> {
    let store = Store::open(db)?;
    let _lock = store.lock_for_run()?;
    let (events, readings) = bounded(CHANNEL_CAPACITY);
    // Work for the publisher is bounded by the outbox thread's queue (one batch outstanding),
    // and wakes are few: unbounded channels, so that neither thread ever waits on the other.
    let (to_publisher, publisher_commands) = unbounded();
    let (answers, publisher_answers) = unbounded();
    let routes: Routes = Arc::default();
    let publisher = Publisher::new(mqtt::Host::new(
        Store::open(db)?,
        status.clone(),
        answers,
        to_publisher.clone(),
        routes.clone(),
    ));
    status
        .gateway_clock
        .observed(store.counter(outbox::NEWEST_READING)? as i64);
    let outbox_thread = OutboxThread::new(Store::open(db)?, status.clone(), to_publisher.clone())?;
    let (outbox_settings, outbox_settings_rx) = unbounded();
    let (publisher_done, publisher_ended) = bounded::<()>(1);
    std::thread::Builder::new()
        .name("publisher".into())
        .spawn(move || {
            publisher.run(publisher_commands);
            let _ = publisher_done.send(());
        })?;
    let outbox_handle = std::thread::Builder::new()
        .name("outbox".into())
        .spawn(move || outbox_thread.run(readings, publisher_answers, outbox_settings_rx))?;
    let http_bind = store.settings()?.http_bind;
    let http = if http_bind.is_empty() {
        None
    } else {
        match crate::status::StatusServer::start(&http_bind, status.clone(), db) {
            Ok(s) => Some(s),
            Err(e) => {
                // The bridge's job is the data: run without the page rather than not at all.
                warn!("status page not started: {e}");
                None
            }
        }
    };
    let push_meters: push::listener::Registry = Arc::new(std::sync::Mutex::new(
        match crate::store::Store::open(db) {
            Ok(s) => push::listener::PushMeters::with_store(s),
            Err(e) => {
                warn!("push: the database cannot be opened for replay counters ({e}); they are kept in memory only");
                push::listener::PushMeters::default()
            }
        },
    ));
    let push_listen = store.settings()?.push_listen;
    let push_listener = if push_listen.is_empty() {
        None
    } else {
        match push::listener::start(
            &push_listen,
            push_meters.clone(),
            events.clone(),
            status.clone(),
            stop.clone(),
        ) {
            Ok(h) => Some(h),
            Err(e) => {
                warn!("push.listen {push_listen}: {e}; meters that push over TCP are not heard");
                None
            }
        }
    };
    let mut workers: HashMap<i64, Running> = HashMap::new();
    let mut rpc_queue = store.settings()?.rpc_queue;
    let shared_settings: meter::SharedSettings =
        Arc::new(std::sync::RwLock::new(store.settings()?));
    let lines = meter::lines::Lines::new(shared_settings.clone(), status.clone());
    let spawn = |rpc_queue| Spawn {
        events: &events,
        status: &status,
        db,
        routes: &routes,
        to_publisher: &to_publisher,
        rpc_queue,
        settings: &shared_settings,
        buses: &lines,
    };
    let alarms = alarm_watch::AlarmThread {
        store: Store::open(db)?,
        status: status.clone(),
        events: events.clone(),
        to_publisher: to_publisher.clone(),
        settings: shared_settings.clone(),
    }
    .start(stop.clone())?;
    let mut revision = -1;
    let mut last_report = Instant::now();
    info!("bridge running with database {}", db.display());
    let mut interval = 60;
    while !stop.load(Ordering::Relaxed) {
        // One small read per 200 ms; meters and settings only when something changed.
        match store.config_revision() {
            Ok(r) if r != revision => match store.meters() {
                Ok(meters) => {
                    if let Ok(s) = store.settings() {
                        interval = s.status_interval_s;
                        rpc_queue = s.rpc_queue;
                        let mut s = s;
                        if s.broker.client_id == "auto" {
                            s.broker.client_id = crate::machine::client_id(db);
                        }
                        let s = Arc::new(s);
                        let _ = outbox_settings.send(s.clone());
                        let _ =
                            to_publisher.send(ToPublisher::Configure(Arc::new(Configuration {
                                settings: s.clone(),
                                devices: meters
                                    .iter()
                                    .map(|m| mqtt::Device {
                                        name: m.name.clone(),
                                        device_type: m.device_type.clone(),
                                        token: m.access_token.as_ref().map(|t| t.0.clone()),
                                        enabled: m.enabled,
                                    })
                                    .collect(),
                            })));
                        *shared_settings.write().unwrap_or_else(|e| e.into_inner()) = (*s).clone();
                    }
                    push_meters
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .configure(
                            &meters,
                            shared_settings
                                .read()
                                .map_or(300, |s| s.push_max_clock_skew_s),
                        );
                    // Once per configuration, not once per meter thread.
                    let refused = store.auth_refused_meters().unwrap_or_else(|e| {
                        warn!("reading refused credentials: {e}");
                        Default::default()
                    });
                    reconcile(&mut workers, meters, &refused, &spawn(rpc_queue));
                    revision = r;
                }
                Err(e) => warn!("reading meters: {e}"),
            },
            Ok(_) => {}
            Err(e) => warn!("reading configuration: {e}"),
        }
        if last_report.elapsed() >= Duration::from_secs(interval) {
            for line in status.report_lines() {
                info!("status: {line}");
            }
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    info!("stopping: releasing {} meter(s)", workers.len());
    let all: Vec<Running> = workers.into_values().collect();
    for w in &all {
        let _ = w.control.send(meter::Control::Stop);
    }
    for w in all {
        let _ = w.handle.join();
    }
    // The listener stops within 0.1 s, its connections within their 1 s read time-out; their
    // senders must be gone for the outbox thread to see the end of the readings.
    if let Some(h) = push_listener {
        let _ = h.join();
    }
    // The alarm thread sees `stop` within a second; its sender too must be gone.
    let _ = alarms.join();
    drop(events);
    // The outbox thread commits what is in memory and gives a connected publisher up to 2 s;
    // it never waits on the network. The publisher then has about a second to disconnect; a
    // publisher stuck in the MQTT library is left behind (the process exits around it).
    let _ = outbox_handle.join();
    if publisher_ended
        .recv_timeout(Duration::from_secs(2))
        .is_err()
    {
        warn!("publisher: did not stop within 2 s; exiting without it (nothing is lost: the outbox is committed)");
    }
    if let Some(h) = http {
        h.stop();
    }
    for line in status.report_lines() {
        info!("status: {line}");
    }
    Ok(())
}

/// Meter threads' RPC queues by meter name: the supervisor keeps it, the publisher routes
/// ThingsBoard RPCs through it.
pub type Routes = Arc<std::sync::Mutex<HashMap<String, Sender<rpc::RpcCall>>>>;

/// What a new meter thread is given.
struct Spawn<'a> {
    events: &'a Sender<Event>,
    status: &'a Arc<Status>,
    db: &'a Path,
    routes: &'a Routes,
    to_publisher: &'a Sender<ToPublisher>,
    rpc_queue: usize,
    settings: &'a meter::SharedSettings,
    buses: &'a meter::lines::Lines,
}

/// Serial devices named by two or more enabled meters (mode E meters sign on alone: never
/// shared).
fn shared_lines<'a>(
    meters: impl Iterator<Item = &'a MeterConfig>,
) -> std::collections::HashSet<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    // A pushing meter has its line to itself (receive only).
    for m in
        meters.filter(|m| m.enabled && !m.mode_e && m.push == crate::config::values::Push::None)
    {
        if let Some(d) = &m.serial_device {
            *seen.entry(d.as_str()).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n >= 2)
        .map(|(d, _)| d.to_string())
        .collect()
}

/// Starts, stops and restarts meter threads to match the configuration.
/// `refused`: the meters whose credentials were refused, on record.
fn reconcile(
    workers: &mut HashMap<i64, Running>,
    meters: Vec<MeterConfig>,
    refused: &std::collections::HashSet<String>,
    spawn: &Spawn<'_>,
) {
    let (events, status, db) = (spawn.events, spawn.status, spawn.db);
    let route = |name: &str, queue: Option<Sender<rpc::RpcCall>>| {
        if let Ok(mut r) = spawn.routes.lock() {
            match queue {
                Some(q) => r.insert(name.to_string(), q),
                None => r.remove(name),
            };
        }
    };
    let wanted: HashMap<i64, MeterConfig> = meters
        .into_iter()
        .filter_map(|m| Some((m.id?, m)))
        .collect();
    let shared = shared_lines(wanted.values());
    let bus_path = |m: &MeterConfig| {
        m.serial_device
            .as_ref()
            .filter(|d| shared.contains(*d))
            .cloned()
    };
    let mut stale = Vec::new();
    for (id, r) in workers.iter_mut() {
        match wanted.get(id) {
            // A meter that joins or leaves a shared line gets a new thread (the port changes
            // hands).
            Some(new) if bus_path(new) != r.bus.as_ref().map(|b| b.path.clone()) => stale.push(*id),
            Some(new) if *new == r.config => {}
            // Only fields a running meter takes up between polls: no reconnection.
            Some(new)
                if new.enabled
                    && crate::config::fields::changed(&r.config, new)
                        .iter()
                        .all(|f| f.live)
                    && r.control
                        .try_send(meter::Control::Update(Box::new(new.clone())))
                        .is_ok() =>
            {
                r.config = new.clone();
            }
            _ => stale.push(*id),
        }
    }
    for id in stale {
        if let Some(r) = workers.remove(&id) {
            info!(
                "meter {:?}: configuration changed or removed, stopping its thread",
                r.config.name
            );
            route(&r.config.name, None);
            let _ = r.control.send(meter::Control::Stop);
            let _ = r.handle.join();
            status.remove_meter(&r.config.name);
        }
    }
    for (id, config) in wanted {
        if !config.enabled {
            status.update_meter(&config.name, |m| m.state = MeterState::Disabled);
            continue;
        }
        if workers.contains_key(&id) {
            continue;
        }
        let bus = bus_path(&config).map(|path| spawn.buses.line(&path, &config));
        // Bounded: a stop and a few updates; the supervisor never waits on a meter thread.
        let (control_tx, control_rx) = bounded(8);
        let (rpc_tx, rpc_rx) = bounded(spawn.rpc_queue);
        let worker = meter::Worker::new(
            config.clone(),
            events.clone(),
            control_rx,
            meter::RpcPorts {
                calls: rpc_rx,
                replies: spawn.to_publisher.clone(),
            },
            meter::Shared {
                status: status.clone(),
                db: db.to_path_buf(),
                settings: spawn.settings.clone(),
                bus: bus.clone(),
                auth_refusal_on_record: refused.contains(&config.name),
            },
        );
        match std::thread::Builder::new()
            .name(format!("meter-{id}"))
            .stack_size(worker_stack())
            .spawn(move || worker.run())
        {
            Ok(handle) => {
                route(&config.name, Some(rpc_tx));
                workers.insert(
                    id,
                    Running {
                        config,
                        control: control_tx,
                        handle,
                        bus,
                    },
                );
            }
            Err(e) => warn!("meter {:?}: cannot start its thread: {e}", config.name),
        }
    }
}

use event::Event;
