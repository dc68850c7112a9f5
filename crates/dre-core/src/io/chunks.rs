//! Reading a 2-D HDF5 dataset in two steps: its stored chunks, still compressed, are
//! fetched under the HDF5 library's lock with `H5Dread_chunk` (the mirror of the writer's
//! `H5Dwrite_chunk`), then decoded (inflated with libdeflate, lzf, unshuffled) on any
//! thread. HDF5 runs its filters on the reading thread under the one lock every call
//! takes, so a file read through it inflates on one core; here the inflating runs on the
//! thread pool.
//!
//! Only what decodes to exactly the bytes HDF5 would give is fetched this way: a chunked
//! dataset whose filters are deflate, shuffle and lzf (one compressor at most), every
//! chunk written. Anything else is read by HDF5 itself (see [`fetch`]).

use hdf5::filters::Filter;
use hdf5::plist::dataset_create::Layout;
use libdeflater::{DecompressionError, Decompressor};
use std::cell::RefCell;
use std::ffi::{c_int, c_uint, c_void};

thread_local! {
    /// libdeflate's decompressor, its tables allocated once per thread.
    static INFLATER: RefCell<Decompressor> = RefCell::new(Decompressor::new());
}

// Linked through hdf5-metno-sys (HDF5 >= 1.10.5; hid_t, hsize_t and haddr_t are 64 bits) and
// hdf5-metno's `lzf` feature (lzf-sys, liblzf built with its input checks).
extern "C" {
    fn H5Dread_chunk(
        dset_id: i64,
        dxpl_id: i64,
        offset: *const u64,
        filters: *mut u32,
        buf: *mut c_void,
    ) -> c_int;
    fn H5Dget_chunk_info_by_coord(
        dset_id: i64,
        offset: *const u64,
        filter_mask: *mut c_uint,
        addr: *mut u64,
        size: *mut u64,
    ) -> c_int;
    fn lzf_decompress(
        in_data: *const c_void,
        in_len: c_uint,
        out_data: *mut c_void,
        out_len: c_uint,
    ) -> c_uint;
}

/// A filter decoded here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Deflate,
    Shuffle,
    Lzf,
}

/// One chunk as stored: where it starts (row, column), the filters skipped when it was
/// written (HDF5's filter mask: bit i, filter i of the pipeline) and its bytes.
struct StoredChunk {
    at: [usize; 2],
    skipped: u32,
    bytes: Vec<u8>,
}

/// A 2-D dataset's chunks as stored in the file, to be decoded by [`StoredChunks::decode`].
pub(crate) struct StoredChunks {
    shape: [usize; 2],
    chunk: [usize; 2],
    /// Bytes of one element.
    elem: usize,
    /// The filter pipeline in the order it was applied when writing.
    steps: Vec<Step>,
    chunks: Vec<StoredChunk>,
}

/// Fetches the stored chunks of dataset `d` (shape `shape`, elements of `elem` bytes, the
/// type already checked to be the native one, so that its bytes need no conversion).
/// `Ok(None)` where they cannot be decoded here, to be read through HDF5: a contiguous or
/// compact dataset, a filter other than deflate, shuffle and lzf (or two compressors),
/// partial edge chunks left unfiltered, or a chunk never written (HDF5 gives its fill
/// value). An error is HDF5's, or a chunk larger than it could be, in words.
pub(crate) fn fetch(
    d: &hdf5::Dataset,
    shape: [usize; 2],
    elem: usize,
) -> Result<Option<StoredChunks>, String> {
    hdf5::sync::sync(|| {
        let dcpl = d.dcpl().map_err(|e| e.to_string())?;
        if dcpl.get_layout().map_err(|e| e.to_string())? != Layout::Chunked {
            return Ok(None);
        }
        let chunk = match dcpl.get_chunk().map_err(|e| e.to_string())?.as_deref() {
            Some(&[rows, cols]) if rows > 0 && cols > 0 => [rows, cols],
            _ => return Ok(None),
        };
        let opts = dcpl.get_chunk_opts().map_err(|e| e.to_string())?;
        if opts.is_some_and(|o| !o.is_empty()) {
            return Ok(None);
        }
        let mut steps = Vec::new();
        for f in dcpl.get_filters().map_err(|e| e.to_string())? {
            steps.push(match f {
                Filter::Deflate(_) => Step::Deflate,
                Filter::Shuffle => Step::Shuffle,
                Filter::LZF => Step::Lzf,
                _ => return Ok(None),
            });
        }
        if steps.iter().filter(|&&s| s != Step::Shuffle).count() > 1 {
            return Ok(None);
        }
        // HDF5 keeps a chunk under 4 GiB; a larger one is left to it to refuse.
        let Some(chunk_bytes) = chunk[0]
            .checked_mul(chunk[1])
            .and_then(|n| n.checked_mul(elem))
            .filter(|&n| n < 1 << 32)
        else {
            return Ok(None);
        };
        // Deflate and lzf store a chunk they cannot shrink unfiltered (the filter is
        // optional): nothing stored is much larger than the chunk itself.
        let most = chunk_bytes + chunk_bytes / 2 + 4096;
        let mut chunks = Vec::new();
        for r in (0..shape[0]).step_by(chunk[0]) {
            for c in (0..shape[1]).step_by(chunk[1]) {
                let offset = [r as u64, c as u64];
                let (mut mask, mut addr, mut n) = (0, 0, 0);
                // SAFETY: the dataset is open and `offset` has one value per axis; the
                // size of a chunk never written is 0.
                hdf5::h5check(unsafe {
                    H5Dget_chunk_info_by_coord(
                        d.id(),
                        offset.as_ptr(),
                        &mut mask,
                        &mut addr,
                        &mut n,
                    )
                })
                .map_err(|e| e.to_string())?;
                if n == 0 {
                    return Ok(None);
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > most {
                    return Err(format!(
                        "chunk at ({r}, {c}) claims {n} bytes, more than a chunk of \
                         {chunk_bytes} bytes can take"
                    ));
                }
                let mut bytes = vec![0u8; n];
                let mut skipped = 0u32;
                // SAFETY: `bytes` holds the chunk's storage size, as H5Dread_chunk writes.
                hdf5::h5check(unsafe {
                    H5Dread_chunk(
                        d.id(),
                        0, // H5P_DEFAULT
                        offset.as_ptr(),
                        &mut skipped,
                        bytes.as_mut_ptr().cast(),
                    )
                })
                .map_err(|e| e.to_string())?;
                chunks.push(StoredChunk {
                    at: [r, c],
                    skipped,
                    bytes,
                });
            }
        }
        Ok(Some(StoredChunks {
            shape,
            chunk,
            elem,
            steps,
            chunks,
        }))
    })
}

impl StoredChunks {
    /// The dataset's bytes in row-major order, as HDF5 would read them in the stored type.
    /// A chunk that does not decode to its size is an error naming it.
    pub(crate) fn decode(&self) -> Result<Vec<u8>, String> {
        let [rows, cols] = self.shape;
        let [ch, cw] = self.chunk;
        let e = self.elem;
        let chunk_bytes = ch * cw * e;
        let mut out = vec![0u8; rows * cols * e];
        for sc in &self.chunks {
            let [r0, c0] = sc.at;
            let bad = |m: String| format!("chunk at ({r0}, {c0}) {m}");
            let mut buf = std::borrow::Cow::Borrowed(&sc.bytes[..]);
            for (i, step) in self.steps.iter().enumerate().rev() {
                if i < 32 && sc.skipped & (1 << i) != 0 {
                    continue;
                }
                buf = std::borrow::Cow::Owned(match step {
                    Step::Deflate => inflate(&buf, chunk_bytes).map_err(bad)?,
                    Step::Lzf => unlzf(&buf, chunk_bytes).map_err(bad)?,
                    Step::Shuffle => unshuffle(&buf, e),
                });
            }
            if buf.len() != chunk_bytes {
                return Err(bad(format!(
                    "holds {} bytes, not the {chunk_bytes} of a chunk",
                    buf.len()
                )));
            }
            // Edge chunks are stored whole; only their part inside the dataset is read.
            let h = ch.min(rows - r0);
            let w = (cw.min(cols - c0)) * e;
            for y in 0..h {
                let to = ((r0 + y) * cols + c0) * e;
                out[to..to + w].copy_from_slice(&buf[y * cw * e..y * cw * e + w]);
            }
        }
        Ok(out)
    }
}

/// A zlib stream (HDF5's deflate filter) inflated to exactly `size` bytes, with libdeflate:
/// the bytes zlib's inflate gives (the stream's Adler-32 checked), two to three times
/// faster.
fn inflate(z: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; size];
    match INFLATER.with(|d| d.borrow_mut().zlib_decompress(z, &mut out)) {
        Ok(n) if n == size => Ok(out),
        Ok(n) => Err(format!("inflates to {n} bytes, not {size}")),
        Err(DecompressionError::BadData) => {
            Err("does not inflate (corrupt or truncated deflate data)".into())
        }
        Err(DecompressionError::InsufficientSpace) => {
            Err(format!("inflates to more than its {size} bytes"))
        }
    }
}

/// An lzf block (h5py's lzf filter, 32000) decompressed to exactly `size` bytes.
fn unlzf(z: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; size];
    let (Ok(z_len), Ok(out_len)) = (c_uint::try_from(z.len()), c_uint::try_from(size)) else {
        return Err("is too large for lzf".into());
    };
    // SAFETY: liblzf reads at most `z_len` bytes and writes at most `out_len` (its input
    // and output checks are compiled in), returning 0 on corrupt input or overflow.
    let n = unsafe { lzf_decompress(z.as_ptr().cast(), z_len, out.as_mut_ptr().cast(), out_len) };
    match n as usize {
        0 => Err(format!(
            "does not decompress to {size} bytes (lzf: corrupt data)"
        )),
        n if n == size => Ok(out),
        n => Err(format!("decompresses to {n} bytes, not {size} (lzf)")),
    }
}

/// HDF5's shuffle filter undone: byte j of every element was stored together, plane j;
/// bytes past the last whole element stay where they are.
fn unshuffle(s: &[u8], elem: usize) -> Vec<u8> {
    if elem <= 1 {
        return s.to_vec();
    }
    let n = s.len() / elem;
    let mut out = s.to_vec();
    for (j, plane) in s[..n * elem].chunks_exact(n).enumerate() {
        for (i, &b) in plane.iter().enumerate() {
            out[i * elem + j] = b;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::ffi::c_ulong;

    #[link(name = "z")]
    extern "C" {
        fn compress(
            dest: *mut u8,
            dest_len: *mut c_ulong,
            source: *const u8,
            len: c_ulong,
        ) -> c_int;
    }

    /// zlib's stream of `bytes` (what HDF5's deflate filter stores).
    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; bytes.len() + 64];
        let mut len = out.len() as c_ulong;
        // SAFETY: `out` holds `len` bytes, more than zlib's bound for this input.
        let rc = unsafe { compress(out.as_mut_ptr(), &mut len, bytes.as_ptr(), bytes.len() as _) };
        assert_eq!(rc, 0);
        out.truncate(len as usize);
        out
    }

    #[test]
    fn unshuffle_undoes_hdf5_shuffle() {
        // Three 4-byte elements shuffled into byte planes, and two trailing bytes.
        let shuffled = [1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12, 13, 14];
        assert_eq!(
            unshuffle(&shuffled, 4),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
        );
        assert_eq!(unshuffle(&[3, 1, 2], 1), [3, 1, 2]);
    }

    #[test]
    fn corrupt_or_short_streams_are_errors_not_garbage() {
        let data: Vec<u8> = (0..16).map(|i| i * 3).collect();
        let z = zlib(&data);
        assert_eq!(inflate(&z, 16).unwrap(), data);
        assert_eq!(
            inflate(&z, 8).unwrap_err(),
            "inflates to more than its 8 bytes"
        );
        assert_eq!(inflate(&z, 32).unwrap_err(), "inflates to 16 bytes, not 32");
        let corrupt = "does not inflate (corrupt or truncated deflate data)";
        assert_eq!(inflate(&[0xA5; 40], 64).unwrap_err(), corrupt);
        assert_eq!(inflate(&z[..z.len() - 6], 16).unwrap_err(), corrupt);
        // The stream's checksum is checked.
        let mut bad_sum = z.clone();
        *bad_sum.last_mut().unwrap() ^= 1;
        assert_eq!(inflate(&bad_sum, 16).unwrap_err(), corrupt);
        // An lzf literal run of 3 bytes (control byte 2), then corrupt input.
        assert_eq!(unlzf(&[2, 7, 8, 9], 3).unwrap(), [7, 8, 9]);
        assert_eq!(
            unlzf(&[2, 7, 8, 9], 4).unwrap_err(),
            "decompresses to 3 bytes, not 4 (lzf)"
        );
        assert_eq!(
            unlzf(&[0xFF; 8], 64).unwrap_err(),
            "does not decompress to 64 bytes (lzf: corrupt data)"
        );
    }

    use crate::io::compression::Compression;
    use crate::io::cuts::{Cut, CutReader, CutWriter};
    use std::path::Path;

    /// One object `00_0001` of side 13 (edge chunks for every chunk shape below) with NaN,
    /// -0 and subnormal pixels, written with the filters `with` sets on each dataset; the
    /// bits of its obj and rms.
    fn write_object(
        path: &Path,
        with: impl Fn(hdf5::DatasetBuilder) -> hdf5::DatasetBuilder,
    ) -> [Vec<u32>; 2] {
        let side = 13;
        let obj: Vec<f32> = (0..side * side)
            .map(|i| match i {
                3 => f32::NAN,
                4 => -0.0,
                5 => f32::from_bits(7),
                _ => (i as f32 * 0.37).sin() * 100.0,
            })
            .collect();
        let rms: Vec<f32> = (0..side * side).map(|i| 1.0 + (i % 5) as f32).collect();
        let seg: Vec<bool> = (0..side * side).map(|i| i % 3 != 0).collect();
        let f = hdf5::File::create(path).unwrap();
        let g = f.create_group("00_0001").unwrap();
        let a = |v: &[f32]| ndarray::Array2::from_shape_vec((side, side), v.to_vec()).unwrap();
        with(g.new_dataset_builder())
            .with_data(&a(&obj))
            .create("obj")
            .unwrap();
        with(g.new_dataset_builder())
            .with_data(&ndarray::Array2::from_shape_vec((side, side), seg).unwrap())
            .create("seg")
            .unwrap();
        with(g.new_dataset_builder())
            .with_data(&a(&rms))
            .create("rms")
            .unwrap();
        [bits(&obj), bits(&rms)]
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every layout and filter pipeline reads as HDF5 itself reads it, bit for bit; those
    /// decoded here are fetched as stored chunks, the others read by HDF5.
    #[test]
    fn cuts_read_as_hdf5_reads_them_whatever_the_filters() {
        type With = fn(hdf5::DatasetBuilder) -> hdf5::DatasetBuilder;
        let cases: [(&str, With, bool); 7] = [
            ("gzip", |b| b.deflate(4), true),
            (
                "shuffle_gzip",
                |b| b.chunk((5, 7)).shuffle().deflate(6),
                true,
            ),
            ("chunked_plain", |b| b.chunk((8, 4)), true),
            ("lzf", |b| b.chunk((4, 13)).lzf(), true),
            ("shuffle_lzf", |b| b.shuffle().lzf(), true),
            ("contiguous", |b| b, false),
            (
                "fletcher32",
                |b| b.chunk((8, 8)).fletcher32().deflate(4),
                false,
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (label, with, stored) in cases {
            let path = dir.path().join(format!("{label}_cuts.h5"));
            let [obj, rms] = write_object(&path, with);
            let plain = hdf5::File::open(&path).unwrap();
            let ds = |n: &str| plain.dataset(&format!("00_0001/{n}")).unwrap();
            for n in ["obj", "seg", "rms"] {
                let elem = if n == "seg" { 1 } else { 4 };
                let fetched = fetch(&ds(n), [13, 13], elem).unwrap();
                assert_eq!(fetched.is_some(), stored, "{label} {n}");
            }
            assert_eq!(bits(&ds("obj").read_raw::<f32>().unwrap()), obj, "{label}");
            assert_eq!(bits(&ds("rms").read_raw::<f32>().unwrap()), rms, "{label}");
            let seg = ds("seg").read_raw::<bool>().unwrap();
            assert_eq!(seg.iter().filter(|&&s| s).count(), 112, "{label}");

            let r = CutReader::open(&path).unwrap();
            let cut = r.read("00_0001").unwrap();
            assert_eq!(bits(&cut.obj), obj, "{label}");
            assert_eq!(bits(&cut.rms), rms, "{label}");
            assert_eq!(cut.seg, seg, "{label}");
            assert_eq!(cut.size, 13);
            let many = r.read_many(&["00_0009".to_string(), "00_0001".to_string()]);
            let again = many[1].as_ref().unwrap();
            assert_eq!((bits(&again.obj), &again.seg), (obj, &seg), "{label}");
            let e = many[0].as_ref().unwrap_err().to_string();
            let want = format!("{}: object 00_0009: group unreadable", path.display());
            assert!(e.starts_with(&want), "{e}");
            assert!(r.warnings().is_empty());
        }
    }

    /// A chunk never written is the fill value, as HDF5 reads it: such a dataset is read by
    /// HDF5, not fetched.
    #[test]
    fn a_chunk_never_written_reads_as_the_fill_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holes_cuts.h5");
        {
            let f = hdf5::File::create(&path).unwrap();
            let g = f.create_group("00_0001").unwrap();
            for n in ["obj", "rms"] {
                let d = g
                    .new_dataset_builder()
                    .chunk((4, 8))
                    .deflate(4)
                    .empty::<f32>()
                    .shape((8, 8))
                    .create(n)
                    .unwrap();
                let top = ndarray::Array2::<f32>::from_elem((4, 8), 2.5);
                d.write_slice(&top, ndarray::s![0..4, ..]).unwrap();
            }
            g.new_dataset_builder()
                .deflate(4)
                .with_data(&ndarray::Array2::from_elem((8, 8), true))
                .create("seg")
                .unwrap();
        }
        let f = hdf5::File::open(&path).unwrap();
        assert!(fetch(&f.dataset("00_0001/obj").unwrap(), [8, 8], 4)
            .unwrap()
            .is_none());
        assert!(fetch(&f.dataset("00_0001/seg").unwrap(), [8, 8], 1)
            .unwrap()
            .is_some());
        let cut = CutReader::open(&path).unwrap().read("00_0001").unwrap();
        let want: Vec<f32> = (0..64).map(|i| if i < 32 { 2.5 } else { 0.0 }).collect();
        assert_eq!(cut.obj, want);
        assert_eq!(cut.rms, want);
        assert_eq!(cut.seg, vec![true; 64]);
    }

    /// Overwrites chunk `index` of dataset `ds` of `path` on disk.
    fn corrupt(path: &Path, ds: &str, index: usize) {
        let (addr, size) = {
            let f = hdf5::File::open(path).unwrap();
            let c = f.dataset(ds).unwrap().chunk_info(index).unwrap();
            (c.addr as usize, c.size as usize)
        };
        let mut bytes = std::fs::read(path).unwrap();
        bytes[addr..addr + size].fill(0xA5);
        std::fs::write(path, bytes).unwrap();
    }

    /// A corrupt chunk is one error of its object, naming the file, the object, the
    /// dataset and the chunk; the other objects read as written.
    #[test]
    fn a_corrupt_chunk_is_one_error_of_its_object() {
        let dir = tempfile::tempdir().unwrap();
        let cut = |k: usize| Cut {
            name: format!("00_000{k}"),
            size: 16,
            obj: (0..256).map(|i| (i * k % 17) as f32).collect(),
            seg: (0..256).map(|i| i % 4 != 0).collect(),
            rms: (0..256).map(|i| 1.0 + (i * k % 7) as f32).collect(),
        };
        let names: Vec<String> = (1..=3).map(|k| cut(k).name).collect();

        // make_cuts' gzip: one chunk per dataset.
        let gzip = dir.path().join("gzip_cuts.h5");
        let mut w = CutWriter::create(&gzip, Compression::Medium).unwrap();
        for k in 1..=3 {
            w.add(cut(k)).unwrap();
        }
        w.finish().unwrap();
        corrupt(&gzip, "00_0002/rms", 0);
        let r = CutReader::open(&gzip).unwrap();
        let got = r.read_many(&names);
        assert_eq!(got[0].as_ref().unwrap(), &cut(1));
        assert_eq!(
            got[1].as_ref().unwrap_err().to_string(),
            format!(
                "{}: object 00_0002: `rms` unreadable (corrupted file?): chunk at (0, 0) \
                 does not inflate (corrupt or truncated deflate data)",
                gzip.display()
            )
        );
        assert_eq!(got[2].as_ref().unwrap(), &cut(3));
        assert_eq!(
            r.read("00_0002").unwrap_err(),
            *got[1].as_ref().unwrap_err()
        );

        // lzf in chunks of 8 x 8: the fourth chunk starts at (8, 8).
        let lzf = dir.path().join("lzf_cuts.h5");
        {
            let f = hdf5::File::create(&lzf).unwrap();
            for k in 1..=3 {
                let c = cut(k);
                let g = f.create_group(&c.name).unwrap();
                let a = |v: Vec<f32>| ndarray::Array2::from_shape_vec((16, 16), v).unwrap();
                let b = || g.new_dataset_builder().chunk((8, 8)).lzf();
                b().with_data(&a(c.obj)).create("obj").unwrap();
                b().with_data(&ndarray::Array2::from_shape_vec((16, 16), c.seg).unwrap())
                    .create("seg")
                    .unwrap();
                b().with_data(&a(c.rms)).create("rms").unwrap();
            }
        }
        corrupt(&lzf, "00_0003/obj", 3);
        let r = CutReader::open(&lzf).unwrap();
        let got = r.read_many(&names);
        assert_eq!(got[0].as_ref().unwrap(), &cut(1));
        assert_eq!(got[1].as_ref().unwrap(), &cut(2));
        assert_eq!(
            got[2].as_ref().unwrap_err().to_string(),
            format!(
                "{}: object 00_0003: `obj` unreadable (corrupted file?): chunk at (8, 8) \
                 does not decompress to 256 bytes (lzf: corrupt data)",
                lzf.display()
            )
        );
    }

    /// The original's cut file (h5py, gzip) is fetched as stored chunks and reads as HDF5
    /// reads it, bit for bit.
    #[test]
    fn the_originals_cut_file_reads_as_hdf5_reads_it() {
        let path = dre_testdata::golden().join("Cuts/gold_cuts.h5");
        let r = CutReader::open(&path).unwrap();
        let f = hdf5::File::open(&path).unwrap();
        let mut fetched = 0;
        for (name, cut) in r.names().iter().zip(r.read_many(r.names())) {
            let cut = cut.unwrap();
            let d = |ds: &str| f.dataset(&format!("{name}/{ds}")).unwrap();
            for (ds, v) in [("obj", &cut.obj), ("rms", &cut.rms)] {
                assert_eq!(bits(v), bits(&d(ds).read_raw::<f32>().unwrap()), "{name}");
                fetched += usize::from(fetch(&d(ds), [cut.size; 2], 4).unwrap().is_some());
            }
            assert_eq!(cut.seg, d("seg").read_raw::<bool>().unwrap(), "{name}");
            fetched += usize::from(fetch(&d("seg"), [cut.size; 2], 1).unwrap().is_some());
        }
        assert_eq!(r.names().len(), 30);
        assert_eq!(fetched, 3 * 30);
    }
}
