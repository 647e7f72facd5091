//! Object names inside a job's directory of the store. Numbers are
//! zero-padded to 20 digits so that names sort in numeric order.

use super::model::{Committed, KeyGroups};

pub(crate) const GENERATIONS: &str = "generations/";
pub(crate) const EPOCHS: &str = "epochs/";
pub(crate) const MATERIALISED: &str = "materialised/";
pub(crate) const LATEST: &str = "latest";
pub(crate) const GC_FLOOR: &str = "gc-floor";
pub(crate) const PUBLISHED: &str = "published/";
pub(crate) const FINISHED: &str = "finished";
pub(crate) const PINS: &str = "pins/";
pub(crate) const ROLLED_BACK: &str = "rolled-back/";

pub(crate) fn generation(g: u64) -> String {
    format!("{GENERATIONS}{g:020}")
}

pub(crate) fn delta(generation: u64, epoch: u64, groups: KeyGroups, part: u16) -> String {
    format!("{EPOCHS}{epoch:020}/g{generation:020}-kg{:05}-{:05}-p{part:05}.delta", groups.first, groups.last)
}

pub(crate) fn output(generation: u64, epoch: u64, sink: u16, part: u16) -> String {
    format!("{EPOCHS}{epoch:020}/g{generation:020}-sink{sink:05}-p{part:05}.out")
}

pub(crate) fn published(sink: u16) -> String {
    format!("{PUBLISHED}{sink:05}")
}

pub(crate) fn meta(at: Committed) -> String {
    format!("{EPOCHS}{:020}/meta-g{:020}", at.epoch, at.generation)
}

pub(crate) fn materialised(kg: u16, at: Committed) -> String {
    format!("{MATERIALISED}{kg:05}/{:020}-g{:020}", at.epoch, at.generation)
}

/// The epoch directory an object under `epochs/` belongs to.
pub(crate) fn epoch_of(rel: &str) -> Option<u64> {
    rel.strip_prefix(EPOCHS)?.split('/').next()?.parse().ok()
}

/// `(kg, checkpoint)` of an object under `materialised/`.
pub(crate) fn parse_materialised(rel: &str) -> Option<(u16, Committed)> {
    let mut parts = rel.strip_prefix(MATERIALISED)?.split('/');
    let kg = parts.next()?.parse().ok()?;
    let (epoch, generation) = parts.next()?.split_once("-g")?;
    let at = Committed { epoch: epoch.parse().ok()?, generation: generation.parse().ok()? };
    parts.next().is_none().then_some((kg, at))
}

/// The checkpoint a `meta-g…` object under `epochs/` describes.
pub(crate) fn parse_meta(rel: &str) -> Option<Committed> {
    let epoch = epoch_of(rel)?;
    let generation = rel.rsplit('/').next()?.strip_prefix("meta-g")?.parse().ok()?;
    Some(Committed { epoch, generation })
}

pub(crate) fn parse_generation(rel: &str) -> Option<u64> {
    rel.strip_prefix(GENERATIONS)?.parse().ok()
}

pub(crate) fn pin(epoch: u64) -> String {
    format!("{PINS}{epoch:020}")
}

pub(crate) fn parse_pin(rel: &str) -> Option<u64> {
    rel.strip_prefix(PINS)?.parse().ok()
}

/// The record that the savepoint of checkpoint `savepoint` was rolled
/// back to (it names the epoch that did it).
pub(crate) fn rolled_back(savepoint: Committed) -> String {
    format!("{ROLLED_BACK}{:020}-g{:020}", savepoint.epoch, savepoint.generation)
}
