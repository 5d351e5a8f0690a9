//! `torch.chunk` / `torch.split` along the channels, one part at a time: [`channel_slice`]
//! copies the channel range `x[:, start:start + len]`. Which ranges a `chunk` or `split`
//! makes is [`split_ranges`], the one rule the compiler's shape inference, its interpreter and
//! its generated code use.

use ndarray::{s, ArrayView4, ArrayViewMut4};

use crate::conv::shape4;
use crate::error::{invalid, Result};
use crate::Tensor;

/// How a `chunk` / `split` divides the channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelSplit {
    /// `x.chunk(n, 1)`: `n` equal parts (fpn requires `n` to divide the channels).
    Chunks(i64),
    /// `x.split([a, b, …], 1)`: parts of these sizes (they must sum to the channels).
    Sizes(Vec<i64>),
}

impl ChannelSplit {
    /// How many parts it makes.
    pub fn parts(&self) -> usize {
        match self {
            ChannelSplit::Chunks(n) => usize::try_from(*n).unwrap_or(0),
            ChannelSplit::Sizes(v) => v.len(),
        }
    }
}

/// The `(start, len)` of every part of `split` on `c` channels, or why it does not apply:
/// a chunk count that does not divide `c` (fpn refuses the uneven chunks PyTorch would make),
/// sizes that do not sum to `c` (PyTorch: "split_with_sizes expects split_sizes to sum exactly
/// to"), a count or size below 1.
pub fn split_ranges(c: i64, split: &ChannelSplit) -> std::result::Result<Vec<(i64, i64)>, String> {
    match split {
        ChannelSplit::Chunks(n) => {
            if *n < 1 {
                return Err(format!("a chunk count must be at least 1, found {n}"));
            }
            if c % n != 0 {
                return Err(format!("{c} channels do not split into {n} equal chunks"));
            }
            let len = c / n;
            Ok((0..*n).map(|k| (k * len, len)).collect())
        }
        ChannelSplit::Sizes(sizes) => {
            if let Some(s) = sizes.iter().find(|&&s| s < 1) {
                return Err(format!("a split size must be at least 1, found {s}"));
            }
            let mut out = Vec::with_capacity(sizes.len());
            let mut start = 0i64;
            for &s in sizes {
                out.push((start, s));
                start = start.saturating_add(s);
            }
            if start != c {
                return Err(format!(
                    "split sizes {sizes:?} sum to {start}, not to the {c} channels of the input"
                ));
            }
            Ok(out)
        }
    }
}

/// The end of the channel range `start..start + len` of `c` channels, or the error naming `op`.
fn channel_end(op: &'static str, c: usize, start: usize, len: usize) -> Result<usize> {
    start.checked_add(len).filter(|&e| len >= 1 && e <= c).ok_or_else(|| {
        invalid(
            op,
            format!("channels {start}..{start}+{len} are not a non-empty range of the {c} channels of the input"),
        )
    })
}

/// `x[:, start:start + len]` as a view (no copy): how generated code reads a `chunk` / `split`
/// part, and a value its producer wrote into its slice of a concat's buffer.
///
/// # Errors
/// [`crate::Error::InvalidParams`] if `len` is 0 or the range leaves the channels of `x`.
pub fn channels(x: ArrayView4<'_, f32>, start: usize, len: usize) -> Result<ArrayView4<'_, f32>> {
    let end = channel_end("channels", shape4(&x)[1], start, len)?;
    Ok(x.slice_move(s![.., start..end, .., ..]))
}

/// Channels `start..start + len` of `x` to write into: where generated code has a conv write
/// its output straight into its part of a concat's buffer.
///
/// # Errors
/// As [`channels`].
pub fn channels_mut(x: &mut Tensor, start: usize, len: usize) -> Result<ArrayViewMut4<'_, f32>> {
    let end = channel_end("channels", shape4(&x.view())[1], start, len)?;
    Ok(x.slice_mut(s![.., start..end, .., ..]))
}

/// Channels `write.0..write.0 + write.1` of `x` to write into and, at once, the channel ranges
/// `reads` (`(start, len)` each) to read: where generated code has a conv write its part of a
/// concat's buffer while reading another part of it (ultralytics' `Bottleneck` adds the chunk
/// it read to its output).
///
/// # Errors
/// [`crate::Error::InvalidParams`] if a range is empty or leaves the channels of `x`, or a read
/// range overlaps the written one.
pub fn channels_rw<const N: usize>(
    x: &mut Tensor,
    write: (usize, usize),
    reads: [(usize, usize); N],
) -> Result<(ArrayViewMut4<'_, f32>, [ArrayView4<'_, f32>; N])> {
    let c = shape4(&x.view())[1];
    let w_end = channel_end("channels", c, write.0, write.1)?;
    for &(start, len) in &reads {
        let end = channel_end("channels", c, start, len)?;
        if start < w_end && write.0 < end {
            return Err(invalid(
                "channels",
                format!(
                    "channels {start}..{end} are read while channels {}..{w_end} are written",
                    write.0
                ),
            ));
        }
    }
    let raws = reads.map(|(start, len)| x.slice(s![.., start..start + len, .., ..]).raw_view());
    let out = x.slice_mut(s![.., write.0..w_end, .., ..]);
    // SAFETY: each raw view points into `x`'s buffer, which stays borrowed (exclusively, by
    // this function's `&mut`) for the returned lifetime and is not reallocated; the read ranges
    // are disjoint from the written one (checked above), so no element is reachable both from
    // `out` and from a read view, and the read views are shared only.
    let views = raws.map(|r| unsafe { r.deref_into_view() });
    Ok((out, views))
}

/// `x[:, start:start + len]`: channels `start..start + len` of `x`, copied.
///
/// # Errors
/// [`crate::Error::InvalidParams`] if `len` is 0 or the range leaves the channels of `x`.
pub fn channel_slice(x: ArrayView4<f32>, start: usize, len: usize) -> Result<Tensor> {
    let end = channel_end("channel_slice", shape4(&x)[1], start, len)?;
    crate::try_copy(x.slice(s![.., start..end, .., ..]), "channel slice")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn slices_concatenate_back_to_the_input() {
        let x = Array4::from_shape_fn([2, 6, 3, 2], |(n, c, h, w)| (n * 1000 + c * 100 + h * 10 + w) as f32);
        for split in [ChannelSplit::Chunks(3), ChannelSplit::Sizes(vec![1, 4, 1])] {
            let ranges = split_ranges(6, &split).unwrap_or_default();
            assert_eq!(ranges.len(), split.parts());
            let parts: Vec<Tensor> = ranges
                .iter()
                .map(|&(s, l)| channel_slice(x.view(), s as usize, l as usize).unwrap_or_default())
                .collect();
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            let back = ndarray::concatenate(ndarray::Axis(1), &views).unwrap_or_default();
            assert_eq!(back, x);
            for ((n, c, h, w), v) in parts[1].indexed_iter() {
                assert_eq!(*v, x[[n, c + ranges[1].0 as usize, h, w]]);
            }
        }
    }

    #[test]
    fn bad_splits_and_ranges_are_refused() {
        assert!(split_ranges(6, &ChannelSplit::Chunks(4)).is_err());
        assert!(split_ranges(6, &ChannelSplit::Chunks(0)).is_err());
        assert!(split_ranges(6, &ChannelSplit::Sizes(vec![2, 3])).is_err());
        assert!(split_ranges(6, &ChannelSplit::Sizes(vec![6, 0])).is_err());
        assert_eq!(
            split_ranges(6, &ChannelSplit::Sizes(vec![2, 4])),
            Ok(vec![(0, 2), (2, 4)])
        );
        let x = Array4::<f32>::zeros([1, 4, 2, 2]);
        assert!(channel_slice(x.view(), 3, 2).is_err());
        assert!(channel_slice(x.view(), 1, 0).is_err());
        assert!(channel_slice(x.view(), usize::MAX, 2).is_err());
        assert_eq!(
            channel_slice(x.view(), 1, 3).map(|t| t.shape().to_vec()).ok(),
            Some(vec![1, 3, 2, 2])
        );
        let mut y = x.clone();
        for (start, len) in [(3, 2), (1, 0), (usize::MAX, 2)] {
            assert!(channels(x.view(), start, len).is_err());
            assert!(channels_mut(&mut y, start, len).is_err());
        }
    }

    #[test]
    fn split_channel_views_read_one_part_and_write_another() {
        let mut x = Array4::from_shape_fn([2, 6, 2, 3], |(n, c, h, w)| (n * 1000 + c * 100 + h * 10 + w) as f32);
        let orig = x.clone();
        if let Ok((mut out, [a, b])) = channels_rw(&mut x, (2, 2), [(0, 2), (4, 1)]) {
            assert_eq!(a, orig.slice(s![.., 0..2, .., ..]));
            assert_eq!(b, orig.slice(s![.., 4..5, .., ..]));
            out.zip_mut_with(&a, |o, &v| *o = -v);
        } else {
            panic!("disjoint ranges are accepted");
        }
        for ((n, c, h, w), v) in x.indexed_iter() {
            let want = if (2..4).contains(&c) {
                -orig[[n, c - 2, h, w]]
            } else {
                orig[[n, c, h, w]]
            };
            assert_eq!(*v, want);
        }
        assert!(channels_rw(&mut x, (2, 2), [(3, 2)]).is_err(), "overlapping read");
        assert!(
            channels_rw(&mut x, (5, 2), [(0, 1)]).is_err(),
            "write past the channels"
        );
        assert!(channels_rw(&mut x, (0, 1), [(6, 1)]).is_err(), "read past the channels");
    }

    #[test]
    fn channel_views_are_the_slices() {
        let mut x = Array4::from_shape_fn([2, 5, 3, 2], |(n, c, h, w)| (n * 1000 + c * 100 + h * 10 + w) as f32);
        let copy = channel_slice(x.view(), 1, 3).unwrap_or_default();
        assert_eq!(channels(x.view(), 1, 3).ok(), Some(copy.view()));
        if let Ok(mut v) = channels_mut(&mut x, 4, 1) {
            v.fill(-1.0);
        }
        for ((n, c, h, w), v) in x.indexed_iter() {
            let want = if c == 4 {
                -1.0
            } else {
                (n * 1000 + c * 100 + h * 10 + w) as f32
            };
            assert_eq!(*v, want);
        }
    }
}
