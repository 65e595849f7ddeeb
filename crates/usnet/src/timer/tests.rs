use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn entry(tick: u64, id: u64) -> Entry {
    let shared: Arc<TimerShared> = Arc::new(TimerShared {
        state: Mutex::new(TimerState {
            expires: None,
            queued_at: None,
        }),
        hr: false,
        func: move |_: &crate::Stack, _: Instant| {
            let _ = id;
        },
    });
    Entry {
        at: Instant::from_nanos(tick * TICK_NS + id), // id smuggled in the sub-tick part
        tick,
        timer: shared,
    }
}

fn id_of(e: &Entry) -> u64 {
    e.at.as_nanos() % TICK_NS
}

#[test]
fn wheel_fires_exactly_on_time_across_levels() {
    let mut w = Wheel::new();
    let ticks = [1u64, 63, 64, 65, 200, 4095, 4096, 4097, 300_000, 20_000_000];
    for (i, &t) in ticks.iter().enumerate() {
        w.insert(entry(t, i as u64));
    }
    let mut out = Vec::new();
    for (i, &t) in ticks.iter().enumerate() {
        assert_eq!(w.next_tick(), Some(t), "next expiry before #{i}");
        w.advance(t - 1, &mut out);
        assert!(out.is_empty(), "fired early: tick {t}");
        w.advance(t, &mut out);
        assert_eq!(out.len(), 1, "tick {t}");
        assert_eq!(id_of(&out[0]), i as u64);
        out.clear();
    }
    assert_eq!(w.next_tick(), None);
    assert_eq!(w.count, 0);
}

#[test]
fn entries_in_the_past_are_due_at_once() {
    let mut w = Wheel::new();
    let mut out = Vec::new();
    w.advance(1000, &mut out);
    w.insert(entry(10, 1));
    assert_eq!(w.next_tick(), Some(1000));
    w.advance(1000, &mut out);
    assert_eq!(out.len(), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u64),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..300_000).prop_map(Op::Insert),
        (1u64..5_000).prop_map(Op::Insert),
        (0u64..100).prop_map(Op::Insert),
        (0u64..70_000).prop_map(Op::Advance),
        (0u64..200).prop_map(Op::Advance),
    ]
}

proptest! {
    /// The wheel against a sorted-map model: the same entries fire at the same ticks,
    /// and next_tick is always the model's minimum.
    #[test]
    fn wheel_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut w = Wheel::new();
        let mut model: BTreeMap<(u64, u64), ()> = BTreeMap::new();
        let mut now = 0u64;
        let mut id = 0u64;
        let mut out = Vec::new();
        for op in ops {
            match op {
                Op::Insert(d) => {
                    id += 1;
                    w.insert(entry(now + d, id));
                    model.insert(((now + d).max(now), id), ());
                }
                Op::Advance(d) => {
                    now += d;
                    w.advance(now, &mut out);
                    let mut fired: Vec<u64> = out.drain(..).map(|e| id_of(&e)).collect();
                    let mut want: Vec<u64> = Vec::new();
                    let keys: Vec<(u64, u64)> = model.keys().copied().filter(|k| k.0 <= now).collect();
                    for k in keys {
                        model.remove(&k);
                        want.push(k.1);
                    }
                    fired.sort();
                    want.sort();
                    prop_assert_eq!(fired, want);
                }
            }
            let want_next = model.keys().next().map(|k| k.0.max(now));
            prop_assert_eq!(w.scan_next_tick(), want_next);
            // The cached earliest (kept across inserts and clock moves) agrees.
            prop_assert_eq!(w.next_tick(), want_next);
            prop_assert_eq!(w.count, model.len());
        }
    }
}
