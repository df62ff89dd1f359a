//! Scoring one video against another: a reader thread decodes batches of
//! frame pairs while the VMAF engine scores the previous batch on every core.

use crate::frames::{FrameReader, InputSpec};
use crate::{MediaError, Result};
use reel_vmaf::{Plane, Report, Scorer};

/// What a scoring run needs besides its inputs.
pub struct ScoreOptions<'a> {
    /// Worker threads; `None` uses rayon's global pool (all cores).
    pub threads: Option<usize>,
    /// Called once the inputs are open, with the reference's frame count
    /// when it is known (for a progress bar).
    pub on_start: &'a (dyn Fn(Option<u64>) + Sync),
    /// Called with the number of frames each batch added.
    pub on_frames: &'a (dyn Fn(u64) + Sync),
    /// Called once if the two inputs differ in length (the shared frames
    /// are scored).
    pub on_length_mismatch: &'a (dyn Fn() + Sync),
}

/// Scores `distorted` against `reference`, scaling the distorted video to
/// the reference's size and depth when they differ.
pub fn score(reference: &InputSpec, distorted: &InputSpec, scorer: Scorer, opts: ScoreOptions<'_>) -> Result<Report> {
    let mut r = FrameReader::open(reference, None, None)?;
    let rs = r.shape();
    let mut d = FrameReader::open(distorted, Some((rs.width, rs.height)), Some(rs.fmt.bpc))?;
    (opts.on_start)(rs.frames);
    let pool = match opts.threads {
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| MediaError::BadInput { path: reference.path.clone(), what: format!("cannot start worker threads: {e}") })?,
        ),
        None => None,
    };
    let threads = pool.as_ref().map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
    let batch = threads.max(1) * 2;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<(Plane, Plane)>>>(1);
    let mut scorer = scorer;
    let mut outcome: Result<()> = Ok(());
    std::thread::scope(|s| {
        s.spawn(move || loop {
            let mut pairs = Vec::with_capacity(batch);
            let mut end = false;
            while pairs.len() < batch {
                match (r.next_frame(), d.next_frame()) {
                    (Ok(Some(a)), Ok(Some(b))) => pairs.push((a, b)),
                    (Ok(None), Ok(None)) => {
                        end = true;
                        break;
                    }
                    (Ok(None), Ok(Some(_))) | (Ok(Some(_)), Ok(None)) => {
                        (opts.on_length_mismatch)();
                        end = true;
                        break;
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            if !pairs.is_empty() && tx.send(Ok(pairs)).is_err() {
                return;
            }
            if end {
                return;
            }
        });
        let scorer = &mut scorer;
        let work = move || -> Result<()> {
            for pairs in rx {
                let pairs = pairs?;
                let n = pairs.len() as u64;
                scorer.push(pairs).map_err(|e| MediaError::BadInput { path: distorted.path.clone(), what: e.to_string() })?;
                (opts.on_frames)(n);
            }
            Ok(())
        };
        outcome = match &pool {
            Some(p) => p.install(work),
            None => work(),
        };
        // `work` owned the receiver: if scoring failed early, dropping it
        // stops the reader at its next send.
    });
    outcome?;
    if scorer.frames_scored() == 0 {
        return Err(MediaError::BadInput { path: reference.path.clone(), what: "has no frames to score".into() });
    }
    Ok(scorer.finish())
}
