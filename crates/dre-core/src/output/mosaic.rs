//! Mosaics (SPEC 6): per object a BOX x 4*BOX float32 image: the data | the segment filled
//! with the mean data flux | the best model scaled to the data | the residual.
//!
//! The original writes each block transposed (a reshape/.T slip); we write them in the
//! tile's orientation, so that the blocks line up with the tile in a viewer.

use crate::error::{Error, Result};
use crate::io::fits::write_image;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Builds the mosaic, row-major, `boxsize` rows of `4 * boxsize`.
///
/// # Panics
///
/// If `data`, `seg` or `model` holds fewer than `boxsize * boxsize` pixels.
pub fn mosaic(
    data: &[f32],
    seg: &[bool],
    model: &[f32],
    scale: f32,
    flux: f32,
    boxsize: usize,
) -> Vec<f32> {
    let b = boxsize;
    let n_seg = seg.iter().filter(|&&s| s).count().max(1) as f32;
    let fill = flux / n_seg;
    let mut out = vec![0f32; 4 * b * b];
    for y in 0..b {
        let row = &mut out[y * 4 * b..(y + 1) * 4 * b];
        for x in 0..b {
            let p = y * b + x;
            let m = scale * model[p];
            row[x] = data[p];
            row[b + x] = if seg[p] { fill } else { 0.0 };
            row[2 * b + x] = m;
            row[3 * b + x] = data[p] - m;
        }
    }
    out
}

/// Writes a mosaic image, whole or not at all.
pub fn write_mosaic(path: impl AsRef<Path>, image: &[f32], boxsize: usize) -> Result<()> {
    write_image(path, 4 * boxsize, boxsize, image, &[])
}

/// Mosaics waiting for the writers at most (a batch of `--chunk`: 16 MiB of 128 x 128
/// mosaics).
const QUEUED_MOSAICS: usize = 64;

/// Threads writing mosaics: they mostly wait for the disk, so more than the cores help.
const MOSAIC_WRITERS: usize = 4;

/// A mosaic to write: its place in the queue, its file and its pixels.
type Queued = (usize, PathBuf, Vec<f32>);

/// What a writer thread wrote: the mosaics' places in the queue and their files.
type Written = Vec<(usize, PathBuf)>;

/// Writes a tile's mosaics on threads of their own (not the fit's). Each file is synced to
/// disk before it is renamed into place (two fsyncs): waits that would otherwise hold up the
/// fit, one file after another. The first failure stops the writers; it is returned by the
/// next [`MosaicWriter::add`] or by [`MosaicWriter::finish`].
pub(crate) struct MosaicWriter {
    queue: Option<SyncSender<Queued>>,
    threads: Vec<JoinHandle<Result<Written>>>,
    queued: usize,
}

impl MosaicWriter {
    /// Writers of mosaics of `boxsize` x `4 * boxsize`.
    pub(crate) fn start(boxsize: usize) -> Result<Self> {
        let (queue, mosaics) = sync_channel::<Queued>(QUEUED_MOSAICS);
        let mosaics = Arc::new(Mutex::new(mosaics));
        let mut w = MosaicWriter {
            queue: Some(queue),
            threads: Vec::new(),
            queued: 0,
        };
        for _ in 0..MOSAIC_WRITERS {
            let mosaics = mosaics.clone();
            let thread = std::thread::Builder::new()
                .name("dre-mosaics".into())
                .spawn(move || {
                    let mut written = Vec::new();
                    loop {
                        // The lock is held only to take the next mosaic.
                        let next = mosaics.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((k, path, image)) = next else {
                            return Ok(written);
                        };
                        write_mosaic(&path, &image, boxsize)?;
                        written.push((k, path));
                    }
                })
                .map_err(|e| Error::Invalid(format!("cannot start the mosaic writers: {e}")))?;
            w.threads.push(thread);
        }
        Ok(w)
    }

    /// Queues `image` for `path` (waits while the queue is full).
    pub(crate) fn add(&mut self, path: PathBuf, image: Vec<f32>) -> Result<()> {
        let k = self.queued;
        self.queued += 1;
        match &self.queue {
            Some(q) if q.send((k, path, image)).is_ok() => Ok(()),
            // Every writer stopped: the error of one.
            _ => self
                .stop()
                .and_then(|_| Err(Error::Invalid("the mosaic writers stopped early".into()))),
        }
    }

    /// Waits for every mosaic queued to be written: their paths, in the order queued.
    pub(crate) fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.stop()
    }

    fn stop(&mut self) -> Result<Vec<PathBuf>> {
        self.queue = None;
        let mut written = Vec::new();
        let mut failed = None;
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Ok(w)) => written.extend(w),
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(_) => {
                    failed = failed.or(Some(Error::Invalid("a mosaic writer panicked".into())))
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        written.sort_unstable_by_key(|(k, _)| *k);
        Ok(written.into_iter().map(|(_, p)| p).collect())
    }
}

impl Drop for MosaicWriter {
    /// A tile given up: what was queued is still written whole (or not), and no thread is
    /// left behind.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mosaic queued is written, the paths come back in the order queued, and a
    /// mosaic that cannot be written is the writer's error, naming its file.
    #[test]
    fn the_mosaic_writer_writes_every_mosaic_and_says_what_failed() {
        let dir = tempfile::tempdir().unwrap();
        let b = 4;
        let image = |k: usize| (0..4 * b * b).map(|p| (k * 100 + p) as f32).collect();
        let mut w = MosaicWriter::start(b).unwrap();
        let paths: Vec<PathBuf> = (0..150)
            .map(|k| dir.path().join(format!("m{k}.fits")))
            .collect();
        for (k, p) in paths.iter().enumerate() {
            w.add(p.clone(), image(k)).unwrap();
        }
        assert_eq!(w.finish().unwrap(), paths);
        for (k, p) in paths.iter().enumerate() {
            let mut hdu = crate::io::image::ImageHdu::open(p, 0).unwrap();
            assert_eq!((hdu.width, hdu.height), (4 * b, b));
            assert_eq!(hdu.read_all::<f32>().unwrap(), image(k));
        }

        let mut w = MosaicWriter::start(b).unwrap();
        std::fs::write(dir.path().join("blocker"), "a file, not a folder").unwrap();
        let bad = dir.path().join("blocker/m.fits");
        w.add(dir.path().join("ok.fits"), image(0)).unwrap();
        // The error comes back by a later add or by finish, whichever sees it.
        let e = w
            .add(bad.clone(), image(1))
            .and_then(|()| w.finish())
            .unwrap_err();
        assert!(e.to_string().contains("blocker"), "{e}");
    }

    #[test]
    fn blocks_are_data_segment_model_residual() {
        let data = [1.0, 2.0, 3.0, 4.0];
        let seg = [true, true, false, true];
        let model = [0.5, 0.25, 0.0, 0.25];
        let m = mosaic(&data, &seg, &model, 4.0, 9.0, 2);
        assert_eq!(&m[..8], &[1.0, 2.0, 3.0, 3.0, 2.0, 1.0, -1.0, 1.0]);
        assert_eq!(&m[8..], &[3.0, 4.0, 0.0, 3.0, 0.0, 1.0, 3.0, 3.0]);
    }
}
