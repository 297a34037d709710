//! Criterion benches of the transform stage: `transform_page` against a bare
//! `simd_json::to_tape` of the same bytes (one group per input; compare the
//! two throughputs of a group). Run: `cargo bench --bench transform`.
//! Inputs: generated simulator-shaped pages, and the real Jira fixtures in
//! `tests/fixtures/jira-real/`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jira_pipeline_bench::transform::{Corpus, generated, load_dir};
use jira_pipeline_core::transform::{Selection, recycle, transform_page_with};

fn group(c: &mut Criterion, name: &str, corpus: &Corpus) {
    let mut g = c.benchmark_group(format!("transform/{name}"));
    g.throughput(Throughput::Bytes(corpus.bytes));
    g.sample_size(20);
    let sel = Selection::all();
    let mut buf = Vec::new();
    g.bench_function("bare_to_tape", |b| {
        b.iter(|| {
            for (_, body) in &corpus.pages {
                buf.clear();
                buf.extend_from_slice(body);
                let t = simd_json::to_tape(&mut buf).map(|t| t.0.len());
                black_box(t.unwrap_or(0));
            }
        })
    });
    g.bench_function("transform_page", |b| {
        b.iter(|| {
            for (meta, body) in &corpus.pages {
                buf.clear();
                buf.extend_from_slice(body);
                let batch = transform_page_with(meta, &mut buf, &corpus.catalog, &sel);
                if let Ok(b) = batch {
                    black_box(b.total_rows());
                    // As `run --stage transform` does once a batch is written.
                    recycle(b);
                }
            }
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    group(c, "generated", &generated(1_000));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jira-real");
    let corpus = load_dir(&fixtures)
        .unwrap_or_else(|e| panic!("real Jira fixtures {}: {e}", fixtures.display()));
    group(c, "fixtures", &corpus);
}

criterion_group!(transform, benches);
criterion_main!(transform);
