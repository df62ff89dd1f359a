//! One object on its way from upstream: the chunks received so far, shared
//! by every client that asked for it, so each is served while the fill
//! streams rather than after it.

use bytes::{Bytes, BytesMut};
use std::sync::Mutex;
use tokio::sync::watch;

#[derive(Debug, Clone, Default)]
struct Progress {
    /// Upstream answered; its length, if it said.
    started: Option<Option<u64>>,
    chunks: usize,
    done: Option<Result<u64, String>>,
}

pub struct Filling {
    chunks: Mutex<Vec<Bytes>>,
    progress: watch::Sender<Progress>,
}

impl Default for Filling {
    fn default() -> Self {
        Self::new()
    }
}

impl Filling {
    pub fn new() -> Self {
        Filling { chunks: Mutex::new(Vec::new()), progress: watch::Sender::new(Progress::default()) }
    }

    fn chunks(&self) -> std::sync::MutexGuard<'_, Vec<Bytes>> {
        self.chunks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn started(&self, len: Option<u64>) {
        self.progress.send_modify(|p| p.started = Some(len));
    }

    pub(crate) fn push(&self, chunk: Bytes) {
        let n = {
            let mut c = self.chunks();
            c.push(chunk);
            c.len()
        };
        self.progress.send_modify(|p| p.chunks = n);
    }

    pub(crate) fn finish(&self, result: Result<u64, String>) {
        self.progress.send_modify(|p| p.done = Some(result));
    }

    /// Every chunk, joined (the fill must have completed).
    pub(crate) fn assemble(&self) -> Bytes {
        let c = self.chunks();
        if c.len() == 1 {
            return c[0].clone();
        }
        let mut all = BytesMut::with_capacity(c.iter().map(Bytes::len).sum());
        for b in c.iter() {
            all.extend_from_slice(b);
        }
        all.freeze()
    }

    /// Waits until upstream has answered: the object's length if known, or
    /// why the fill failed.
    pub async fn length(&self) -> Result<Option<u64>, String> {
        let mut rx = self.progress.subscribe();
        let p = rx
            .wait_for(|p| p.started.is_some() || p.done.is_some())
            .await
            .map_err(|_| "the fill was abandoned".to_string())?
            .clone();
        match (p.started, p.done) {
            (_, Some(Err(e))) => Err(e),
            (Some(len), _) => Ok(len),
            (None, Some(Ok(n))) => Ok(Some(n)),
            (None, None) => Err("the fill was abandoned".into()),
        }
    }

    /// Waits for the whole object.
    pub async fn whole(&self) -> Result<Bytes, String> {
        let mut rx = self.progress.subscribe();
        let done = rx.wait_for(|p| p.done.is_some()).await.map_err(|_| "the fill was abandoned".to_string())?.done.clone();
        match done {
            Some(Ok(_)) => Ok(self.assemble()),
            Some(Err(e)) => Err(e),
            None => Err("the fill was abandoned".into()),
        }
    }

    /// The `i`th chunk once it has arrived; `Ok(None)` after the last one,
    /// `Err` if the fill broke off first.
    pub async fn chunk(&self, i: usize) -> Result<Option<Bytes>, String> {
        let mut rx = self.progress.subscribe();
        loop {
            if let Some(c) = self.chunks().get(i) {
                return Ok(Some(c.clone()));
            }
            let p = rx.borrow_and_update().clone();
            if p.chunks > i {
                continue;
            }
            match p.done {
                Some(Ok(_)) => return Ok(None),
                Some(Err(e)) => return Err(e),
                None => {}
            }
            if rx.changed().await.is_err() {
                return Err("the fill was abandoned".into());
            }
        }
    }
}
