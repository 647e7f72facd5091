//! The coordinator's state machine driven by scripts on a fake clock.

use super::*;
use crate::checkpoint::protocol::Staged;

const GEN: Generation = Generation(3);
const SRC: TaskId = TaskId { vertex: 1, subtask: 0 };
const SRC2: TaskId = TaskId { vertex: 2, subtask: 0 };
const WIN0: TaskId = TaskId { vertex: 4, subtask: 0 };
const WIN1: TaskId = TaskId { vertex: 4, subtask: 1 };
const SINK: TaskId = TaskId { vertex: 5, subtask: 0 };
const STRANGER: TaskId = TaskId { vertex: 99, subtask: 7 };

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn timing() -> Timing {
    Timing { interval: ms(1000), min_pause: ms(100), epoch_timeout: ms(5000), checkpointing: true }
}

/// A job of one source, two window instances and a sink, next epoch 1.
fn machine() -> Machine {
    let mut m = Machine::new(timing(), GEN, 1);
    assert!(m.add_task(SRC, true));
    for t in [WIN0, WIN1, SINK] {
        assert!(m.add_task(t, false));
    }
    assert!(!m.add_task(SINK, false), "a second task under one id is refused");
    m
}

fn ack(task: TaskId, epoch: u64) -> Input {
    Input::Report(ToCoordinator::Ack(Ack {
        task,
        generation: GEN,
        epoch,
        staged: Staged { entries: 1 },
        finished_source: false,
    }))
}

fn last_ack(task: TaskId, epoch: u64) -> Input {
    let Input::Report(ToCoordinator::Ack(a)) = ack(task, epoch) else { unreachable!() };
    Input::Report(ToCoordinator::Ack(Ack { finished_source: true, ..a }))
}

fn done(task: TaskId) -> Input {
    Input::Report(ToCoordinator::Done { task, generation: GEN })
}

fn all_ack(epoch: u64) -> Vec<Input> {
    [SRC, WIN0, WIN1, SINK].into_iter().map(|t| ack(t, epoch)).collect()
}

/// Feeds `script` (time in ms, input) and returns every action, each with
/// the time of the input that produced it.
fn run(m: &mut Machine, script: Vec<(u64, Input)>) -> Vec<(u64, Action)> {
    let mut out = Vec::new();
    for (t, input) in script {
        out.extend(m.step(ms(t), input).into_iter().map(|a| (t, a)));
    }
    out
}

fn at(t: u64, inputs: Vec<Input>) -> Vec<(u64, Input)> {
    inputs.into_iter().map(|i| (t, i)).collect()
}

fn complete(t: u64, epoch: u64) -> [(u64, Action); 2] {
    [(t, Action::WriteCompleteMarker { epoch, finished: false }), (t, Action::NotifyCommit { epoch })]
}

fn ignore(t: u64, task: TaskId, epoch: u64, why: Ignored) -> (u64, Action) {
    (t, Action::Ignore { task: Some(task), epoch: Some(epoch), why })
}

#[test]
fn table() {
    struct Case {
        guards: &'static str,
        script: Vec<(u64, Input)>,
        expect: Vec<(u64, Action)>,
    }
    let cases = vec![
        Case {
            guards: "normal epoch: triggered after one interval, complete once all four tasks acked",
            script: [vec![(999, Input::Tick), (1000, Input::Tick)], at(1010, all_ack(1))].concat(),
            expect: [vec![(1000, Action::Trigger { epoch: 1 })], complete(1010, 1).to_vec()].concat(),
        },
        Case {
            guards: "acks out of order (sink before source) still complete the epoch, once",
            script: [vec![(1000, Input::Tick)], at(1010, all_ack(1).into_iter().rev().collect())].concat(),
            expect: [vec![(1000, Action::Trigger { epoch: 1 })], complete(1010, 1).to_vec()].concat(),
        },
        Case {
            guards: "a duplicate ack is ignored and does not stand in for a missing one",
            script: vec![
                (1000, Input::Tick),
                (1001, ack(SRC, 1)),
                (1002, ack(WIN0, 1)),
                (1003, ack(WIN0, 1)),
                (1004, ack(SINK, 1)),
                (1005, ack(WIN1, 1)),
            ],
            expect: [
                vec![(1000, Action::Trigger { epoch: 1 }), ignore(1003, WIN0, 1, Ignored::Duplicate)],
                complete(1005, 1).to_vec(),
            ]
            .concat(),
        },
        Case {
            guards: "an ack from a task the job does not have is ignored and not counted",
            script: [vec![(1000, Input::Tick), (1001, ack(STRANGER, 1))], at(1002, all_ack(1)[..3].to_vec())].concat(),
            expect: vec![(1000, Action::Trigger { epoch: 1 }), ignore(1001, STRANGER, 1, Ignored::UnknownTask)],
        },
        Case {
            guards: "an ack for a completed epoch is late: ignored, and not counted for the next one",
            script: [
                vec![(1000, Input::Tick)],
                at(1010, all_ack(1)),
                vec![(2010, Input::Tick), (2011, ack(SINK, 1))],
                at(2020, all_ack(2)[..3].to_vec()),
            ]
            .concat(),
            expect: [
                vec![(1000, Action::Trigger { epoch: 1 })],
                complete(1010, 1).to_vec(),
                vec![(2010, Action::Trigger { epoch: 2 }), ignore(2011, SINK, 1, Ignored::Late)],
            ]
            .concat(),
        },
        Case {
            guards: "an ack for an epoch never triggered is ignored",
            script: vec![(10, ack(SRC, 1))],
            expect: vec![ignore(10, SRC, 1, Ignored::NotTriggered)],
        },
        Case {
            guards: "an ack of an older generation (a fenced task) is ignored and not counted",
            script: [
                vec![(1000, Input::Tick)],
                vec![(
                    1001,
                    Input::Report(ToCoordinator::Ack(Ack {
                        task: SRC,
                        generation: Generation(2),
                        epoch: 1,
                        staged: Staged::default(),
                        finished_source: false,
                    })),
                )],
                at(1002, all_ack(1)[1..].to_vec()),
            ]
            .concat(),
            expect: vec![(1000, Action::Trigger { epoch: 1 }), ignore(1001, SRC, 1, Ignored::OldGeneration)],
        },
        Case {
            guards: "an epoch missing an ack past the timeout is aborted, naming the missing tasks, \
                     and the next one starts an interval later",
            script: [
                vec![(1000, Input::Tick)],
                at(1001, all_ack(1)[..2].to_vec()),
                vec![(5999, Input::Tick), (6000, Input::Tick), (6500, ack(SINK, 1)), (6999, Input::Tick)],
                vec![(7000, Input::Tick)],
            ]
            .concat(),
            expect: vec![
                (1000, Action::Trigger { epoch: 1 }),
                (6000, Action::Abort { epoch: 1, missing: vec![WIN1, SINK] }),
                ignore(6500, SINK, 1, Ignored::Late),
                (7000, Action::Trigger { epoch: 2 }),
            ],
        },
        Case {
            guards: "a wanted epoch waits for the minimum pause after the last completion, not the interval",
            script: [
                vec![(1000, Input::Tick)],
                at(1010, all_ack(1)),
                vec![(1020, Input::Report(ToCoordinator::Want { epoch: 2 })), (1109, Input::Tick), (1110, Input::Tick)],
            ]
            .concat(),
            expect: [
                vec![(1000, Action::Trigger { epoch: 1 })],
                complete(1010, 1).to_vec(),
                vec![(1110, Action::Trigger { epoch: 2 })],
            ]
            .concat(),
        },
        Case {
            guards: "a wanted epoch before any completion is triggered at once",
            script: vec![(5, Input::Report(ToCoordinator::Want { epoch: 1 }))],
            expect: vec![(5, Action::Trigger { epoch: 1 })],
        },
        Case {
            guards: "a source at its end gets an epoch at once; once it completes, the job is marked \
                     finished and ends when every task is done",
            script: [
                vec![(300, Input::Report(ToCoordinator::FinalWanted { task: SRC, after: 0 }))],
                vec![(301, last_ack(SRC, 1))],
                at(302, all_ack(1)[1..].to_vec()),
                at(400, vec![done(SRC), done(WIN0), done(WIN1)]),
                vec![(5000, Input::Tick), (5001, done(SINK))],
            ]
            .concat(),
            expect: vec![
                (300, Action::Trigger { epoch: 1 }),
                (302, Action::WriteCompleteMarker { epoch: 1, finished: true }),
                (302, Action::NotifyCommit { epoch: 1 }),
                (5001, Action::Finish),
            ],
        },
        Case {
            guards: "a final request already covered by a triggered epoch asks for no extra one",
            script: [
                vec![(1000, Input::Tick)],
                vec![(1001, Input::Report(ToCoordinator::FinalWanted { task: SRC, after: 0 }))],
                vec![(1002, last_ack(SRC, 1))],
                at(1003, all_ack(1)[1..].to_vec()),
                vec![(1004, Input::Tick)],
            ]
            .concat(),
            expect: vec![
                (1000, Action::Trigger { epoch: 1 }),
                (1003, Action::WriteCompleteMarker { epoch: 1, finished: true }),
                (1003, Action::NotifyCommit { epoch: 1 }),
            ],
        },
        Case {
            guards: "a stop request triggers an epoch at once and the job is not marked finished",
            script: [vec![(10, Input::StopRequested)], vec![(11, last_ack(SRC, 1))], at(12, all_ack(1)[1..].to_vec())]
                .concat(),
            expect: [vec![(10, Action::Trigger { epoch: 1 })], complete(12, 1).to_vec()].concat(),
        },
        Case {
            guards: "a task failure fails the job at once, and nothing happens after it",
            script: vec![
                (1000, Input::Tick),
                (1001, Input::Report(ToCoordinator::Failed { task: WIN1, generation: GEN, reason: "disk".into() })),
                (1002, ack(SRC, 1)),
                (9000, Input::Tick),
            ],
            expect: vec![
                (1000, Action::Trigger { epoch: 1 }),
                (1001, Action::Fail { task: WIN1, reason: "disk".into() }),
            ],
        },
        Case {
            guards: "a failure reported under an older generation does not fail the job",
            script: vec![(
                10,
                Input::Report(ToCoordinator::Failed { task: WIN1, generation: Generation(1), reason: "old".into() }),
            )],
            expect: vec![(10, Action::Ignore { task: Some(WIN1), epoch: None, why: Ignored::OldGeneration })],
        },
    ];
    for case in cases {
        let mut m = machine();
        assert_eq!(run(&mut m, case.script), case.expect, "{}", case.guards);
    }
}

/// Guards that ignored acks are counted by reason, and completions too.
#[test]
fn ignored_acks_and_completions_are_counted() {
    let mut m = machine();
    run(
        &mut m,
        [vec![(1000, Input::Tick), (1001, ack(STRANGER, 1)), (1001, ack(SRC, 1))], at(1002, all_ack(1))].concat(),
    );
    assert_eq!(m.ignored(Ignored::UnknownTask), 1);
    assert_eq!(m.ignored(Ignored::Duplicate), 1);
    assert_eq!(m.completed(), 1);
}

/// Guards that a finished source is no longer waited for: with two
/// sources, after one finished, the next epoch completes without it, and an
/// ack from it is not counted.
#[test]
fn a_finished_source_is_not_expected_in_later_epochs() {
    let mut m = machine();
    assert!(m.add_task(SRC2, true));
    let acts = run(
        &mut m,
        [
            vec![(1000, Input::Tick), (1001, last_ack(SRC2, 1))],
            at(1002, all_ack(1)),
            vec![(2002, Input::Tick), (2003, ack(SRC2, 2))],
            at(2004, all_ack(2)),
        ]
        .concat(),
    );
    assert_eq!(
        acts,
        [
            vec![(1000, Action::Trigger { epoch: 1 })],
            complete(1002, 1).to_vec(),
            vec![(2002, Action::Trigger { epoch: 2 }), ignore(2003, SRC2, 2, Ignored::UnknownTask)],
            complete(2004, 2).to_vec(),
        ]
        .concat()
    );
}

/// Guards the driver's wait: the next deadline is the interval, the
/// minimum pause for a wanted epoch, or the timeout of the epoch in flight;
/// none without checkpoints.
#[test]
fn next_deadline_follows_interval_pause_and_timeout() {
    let mut m = machine();
    assert_eq!(m.next_deadline(), Some(ms(1000)));
    run(&mut m, [vec![(1000, Input::Tick)], at(1010, all_ack(1))].concat());
    assert_eq!(m.next_deadline(), Some(ms(2000)));
    run(&mut m, vec![(1020, Input::Report(ToCoordinator::Want { epoch: 2 }))]);
    assert_eq!(m.next_deadline(), Some(ms(1110)));
    run(&mut m, vec![(1110, Input::Tick)]);
    assert_eq!(m.next_deadline(), Some(ms(6110)));
    let mut off = Machine::new(Timing { checkpointing: false, ..timing() }, GEN, 1);
    assert!(off.add_task(SRC, true));
    assert_eq!(off.next_deadline(), None);
    assert_eq!(off.step(ms(5000), Input::Tick), vec![], "no epochs without checkpoints");
    assert_eq!(off.step(ms(5001), done(SRC)), vec![Action::Finish]);
}
