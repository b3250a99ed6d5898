//! Benchmarks of acknowledging one batch of 50 records while 100,000 records are queued.
//!
//! Each iteration reads the front batch, removes it as the worker does after a 200 response,
//! and appends 50 records, so the queue stays at 100,000 records. Run with
//! `cargo bench -p groupscope --features bench-internals --bench queue`.

use criterion::{Criterion, criterion_group, criterion_main};
use groupscope::bench_internals::{MemoryQueue, Queue, Record, SqliteQueue};
use groupscope::protocol::Endpoint;

const QUEUED: usize = 100_000;
const BATCH: usize = 50;

fn records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| {
            let insert_id = format!("{i:032x}");
            Record {
                endpoint: Endpoint::Track,
                body: format!(
                    r#"{{"event":"Bench Event","properties":{{"$insert_id":"{insert_id}","plan":"pro","seats":12}}}}"#
                )
                .into(),
                insert_id: Some(insert_id),
            }
        })
        .collect()
}

/// Reads the front batch, removes it and appends `refill` so the queue keeps its length.
fn acknowledge_batch(queue: &mut dyn Queue, refill: &[Record]) {
    let ids: Vec<i64> = queue
        .front(Endpoint::Track, BATCH)
        .unwrap()
        .iter()
        .map(|stored| stored.id)
        .collect();
    assert_eq!(ids.len(), BATCH);
    queue.remove(&ids).unwrap();
    queue.append(refill).unwrap();
}

fn bench_acknowledge(c: &mut Criterion) {
    let refill = records(BATCH);

    let mut memory = MemoryQueue::new();
    memory.append(&records(QUEUED)).unwrap();
    c.bench_function(
        "acknowledge a batch of 50 with 100k queued, in-memory queue",
        |b| b.iter(|| acknowledge_batch(&mut memory, &refill)),
    );

    let dir = tempfile::tempdir().unwrap();
    let mut durable = SqliteQueue::open(dir.path(), true).unwrap();
    for chunk in records(QUEUED).chunks(10_000) {
        durable.append(chunk).unwrap();
    }
    c.bench_function(
        "acknowledge a batch of 50 with 100k queued, durable queue",
        |b| b.iter(|| acknowledge_batch(&mut durable, &refill)),
    );
}

criterion_group!(benches, bench_acknowledge);
criterion_main!(benches);
