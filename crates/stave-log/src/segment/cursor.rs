//! Reading a segment's frames: `CheckedFrame`, a frame whose header and body CRC were checked,
//! and `FrameCursor`, which walks a range of the file's mmap frame by frame and stops at the
//! first frame that fails a check.

use std::path::Path;

use bytes::Bytes;

use crate::error::{CorruptReason, LogError, Result};
use crate::frame::{BodyHeader, FrameHeader, check_frame};

use super::Segment;

/// A stored frame, checked.
#[derive(Debug, Clone)]
pub(crate) struct CheckedFrame {
    pub position: u64,
    pub header: FrameHeader,
    pub body: BodyHeader,
    pub bytes: Bytes,
}

/// Checks the frame at the front of `bytes` (which starts at file position `position`).
pub(super) fn check_at(
    bytes: &Bytes,
    position: u64,
) -> std::result::Result<CheckedFrame, CorruptReason> {
    let (header, body) = check_frame(bytes, true)?;
    Ok(CheckedFrame {
        position,
        header,
        body,
        bytes: bytes.slice(..header.frame_len()),
    })
}

impl Segment {
    /// Checked frames from `position` to the end of the segment.
    pub fn frames_from(&self, position: u64) -> Result<FrameCursor<'_>> {
        let view = self
            .file
            .view(position, (self.end - position) as usize)
            .map_err(LogError::io("map", &self.path))?;
        Ok(FrameCursor {
            view,
            start: position,
            at: 0,
            path: &self.path,
        })
    }
}

/// Iterates the checked frames of a segment range; yields a `Corrupt` error and stops at the
/// first frame that fails a check.
#[derive(Debug)]
pub(crate) struct FrameCursor<'a> {
    view: Bytes,
    start: u64,
    at: usize,
    path: &'a Path,
}

impl FrameCursor<'_> {
    /// The bytes of `[start, end)` (file positions within the cursor's range).
    pub fn slice(&self, (start, end): (u64, u64)) -> Bytes {
        self.view
            .slice((start - self.start) as usize..(end - self.start) as usize)
    }
}

impl Iterator for FrameCursor<'_> {
    type Item = Result<CheckedFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.view.len() {
            return None;
        }
        let position = self.start + self.at as u64;
        match check_at(&self.view.slice(self.at..), position) {
            Ok(frame) => {
                self.at += frame.bytes.len();
                Some(Ok(frame))
            }
            Err(reason) => {
                self.at = self.view.len();
                Some(Err(LogError::Corrupt {
                    path: self.path.to_path_buf(),
                    position,
                    reason,
                }))
            }
        }
    }
}
