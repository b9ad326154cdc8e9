//! The runtime's side of uploads on a page's connection: offers answered with the files the
//! view accepts, binary chunks routed to their file, cancels, and files dropped when the view
//! goes.

use super::runtime::ViewSession;
use super::upload::{Chunk, Offered};
use crate::protocol::names::{attr, control};
use crate::protocol::{Event, close, escape_attr};
use crate::session::{Context, SessionError};

/// Cancelled files whose chunks may still be on their way (ignored, not an error).
const RECENTLY_CANCELLED: usize = 16;

/// Files on their way on one connection: which upload each id belongs to.
#[derive(Debug, Default)]
pub(crate) struct Receiving {
    files: Vec<(u32, String)>,
    next_id: u32,
    cancelled: std::collections::VecDeque<u32>,
}

impl<St: Clone + Send + Sync + 'static> ViewSession<St> {
    /// `lh:upload`: the files the page offers to one of the view's uploads.
    pub(crate) fn offer(&mut self, ctx: &mut Context, event: &Event) -> Result<(), super::ViewError> {
        let name = event.value("upload").unwrap_or_default().to_owned();
        let files = Offered::parse_list(event.value("files").unwrap_or("[]")).map_err(super::ViewError::bad_request)?;
        let receiving = &mut self.receiving;
        let view = self.view.as_mut().ok_or(super::ViewError::NotFound)?;
        let upload =
            view.upload(&name).ok_or_else(|| super::ViewError::bad_request(format!("no upload named {name:?}")))?;
        let accepted = upload.offer(files, &event.values, &mut receiving.next_id);
        let mut go = String::new();
        for (reference, id) in &accepted {
            receiving.files.push((*id, name.clone()));
            if !go.is_empty() {
                go.push(' ');
            }
            go.push_str(reference);
            go.push(':');
            go.push_str(&id.to_string());
        }
        if !go.is_empty() {
            let mut out = format!("<template {}=\"", attr::UPLOAD_GO);
            escape_attr(&mut out, &go);
            out.push_str("\"></template>");
            ctx.push_encoded(&out);
        }
        self.refresh(ctx);
        Ok(())
    }

    /// `lh:upload-cancel`: the page gives up a file.
    pub(crate) fn cancel_upload(&mut self, ctx: &mut Context, event: &Event) {
        if let Some(id) = event.value("id").and_then(|v| v.parse().ok()) {
            self.drop_file(id);
            ctx.push_encoded(&stop(id));
        }
        self.refresh(ctx);
    }

    /// A binary message: the next piece of a file (its id, 4 bytes big-endian, then bytes).
    pub(crate) async fn chunk(&mut self, ctx: &mut Context, bytes: &[u8]) -> Result<(), SessionError> {
        let Some((id, data)) = bytes.split_first_chunk::<4>().map(|(id, data)| (u32::from_be_bytes(*id), data)) else {
            return Err(SessionError::close(close::POLICY, "an upload chunk without its file's id"));
        };
        let Some(name) = self.receiving.files.iter().find(|(f, _)| *f == id).map(|(_, n)| n.clone()) else {
            if self.receiving.cancelled.contains(&id) {
                return Ok(());
            }
            return Err(SessionError::close(close::POLICY, "a chunk for no file on its way"));
        };
        let Some(view) = self.view.as_mut() else { return Ok(()) };
        let Some(upload) = view.upload(&name).filter(|u| u.has(id)) else {
            self.drop_file(id);
            return Ok(());
        };
        match upload.chunk(id, data) {
            Chunk::Progress { before, now } => {
                if before != now {
                    self.refresh(ctx);
                }
            }
            Chunk::Done(file) => {
                self.receiving.files.retain(|(f, _)| *f != id);
                let result = view.on_upload(ctx, file).await;
                if let Err(e) = result {
                    Self::flash(ctx, &e);
                }
                self.refresh(ctx);
            }
            Chunk::Refused(message) => {
                self.drop_file(id);
                ctx.push_encoded(&stop(id));
                Self::flash(ctx, &super::ViewError::bad_request(message));
                self.refresh(ctx);
            }
        }
        Ok(())
    }

    /// Forgets file `id` (its chunks still on their way are ignored).
    fn drop_file(&mut self, id: u32) {
        if let Some(i) = self.receiving.files.iter().position(|(f, _)| *f == id) {
            let (_, name) = self.receiving.files.remove(i);
            if let Some(upload) = self.view.as_mut().and_then(|v| v.upload(&name)) {
                upload.cancel(id);
            }
        }
        if self.receiving.cancelled.len() == RECENTLY_CANCELLED {
            self.receiving.cancelled.pop_front();
        }
        self.receiving.cancelled.push_back(id);
    }

    /// The view leaves this connection: its files on their way are dropped (the page stops
    /// sending when its connection or view goes).
    pub(crate) fn drop_files(&mut self) {
        let files = std::mem::take(&mut self.receiving.files);
        let Some(view) = self.view.as_mut() else { return };
        for (id, name) in files {
            if let Some(upload) = view.upload(&name) {
                upload.cancel(id);
            }
        }
    }
}

/// Tells the page to stop sending file `id`.
fn stop(id: u32) -> String {
    format!("<template {}=\"{id}\"></template>", attr::UPLOAD_STOP)
}

/// Whether `event` is one of the upload protocol's.
pub(crate) fn is_upload_event(event: &Event) -> bool {
    matches!(event.name.as_deref(), Some(control::UPLOAD_EVENT | control::UPLOAD_CANCEL_EVENT))
}
