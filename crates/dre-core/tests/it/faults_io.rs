//! The readers and writers under bad input and faults: literal file names, headers larger
//! than their file, cut datasets of the wrong type or shape, corrupted HDF5, a full disk.
//! Every failure is one error naming the file (and object), never an abort, and a failed
//! write leaves neither the file nor its temporary.

use dre::{
    default_cube, default_grid, read_catalog, read_chi, read_cube, read_grid, read_psf, write_cube,
    write_mosaic, write_table, Axis, ChiWriter, Column, ColumnData, Compression, Cut, CutReader,
    CutWriter, Grid, ModelCube, Table,
};
use std::path::{Path, PathBuf};

fn grid(boxsize: usize) -> Grid {
    Grid {
        index: Axis::new(4.0, 0.0, 1),
        axrat: Axis::new(0.5, 0.5, 2),
        posang: Axis::new(0.0, 90.0, 2),
        logh: Axis::new(0.2, 0.2, 3),
        boxsize,
    }
}

fn cube(boxsize: usize) -> ModelCube {
    let g = grid(boxsize);
    let n = g.n_models() * g.stamp_len();
    ModelCube {
        grid: g,
        data: (0..n).map(|i| (i % 97) as f32 + 1.0).collect(),
    }
}

fn table(rows: usize) -> Table {
    Table {
        columns: vec![
            Column::new("NUMBER", 1, ColumnData::I32((1..=rows as i32).collect())),
            Column::new(
                "X",
                1,
                ColumnData::F64((0..rows).map(|i| i as f64 * 0.5).collect()),
            ),
        ],
    }
}

/// Every file below `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn no_temporaries(dir: &Path) {
    for f in files(dir) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "left behind: {}", f.display());
    }
}

// ---- Literal names ----------------------------------------------------------------------

/// Names CFITSIO's extended syntax would parse (a filter, an HDU, a row selection, a
/// compressed or overwritten file) are plain names, and so are spaces.
const ODD_NAMES: [&str; 7] = [
    "t[1]",
    "t(2)",
    "t 3",
    "t{4}",
    "!t5",
    "t6.fits[1:2]",
    "mem:t7",
];

#[test]
fn fits_names_are_literal_for_every_reader_and_writer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut want = Vec::new();
    small_image(&d.join("plain_psf.fits"));
    let pixels: Vec<f32> = (0..4 * 5 * 5).map(|i| i as f32).collect();
    write_mosaic(d.join("plain_mosaic.fits"), &pixels, 5).unwrap();
    let plain_mosaic = std::fs::read(d.join("plain_mosaic.fits")).unwrap();
    for stem in ODD_NAMES {
        let cat = d.join(format!("{stem}_cat.fits"));
        write_table(&cat, &table(3)).unwrap();
        assert_eq!(read_catalog(&cat).unwrap(), table(3), "{stem}");

        let cube_file = d.join(format!("{stem}_cube.fits"));
        write_cube(&cube_file, &cube(8), &[]).unwrap();
        assert_eq!(read_cube(&cube_file).unwrap().data, cube(8).data, "{stem}");
        assert_eq!(read_grid(&cube_file).unwrap(), grid(8), "{stem}");

        let image = d.join(format!("{stem}_psf.fits"));
        std::fs::copy(d.join("plain_psf.fits"), &image).unwrap();
        let psf = read_psf(&image).unwrap();
        assert_eq!((psf.width, psf.height), (5, 5), "{stem}");

        let mosaic = d.join(format!("{stem}_mosaic.fits"));
        write_mosaic(&mosaic, &pixels, 5).unwrap();
        assert_eq!(std::fs::read(&mosaic).unwrap(), plain_mosaic, "{stem}");

        want.extend([cat, cube_file, image, mosaic]);
    }
    want.extend([d.join("plain_psf.fits"), d.join("plain_mosaic.fits")]);
    // Exactly the files named, nothing beside them (no `t` from `t[1]`, no temporaries).
    want.sort();
    assert_eq!(files(d), want);
}

#[test]
fn hdf5_names_are_literal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for stem in ODD_NAMES {
        let path = d.join(format!("{stem}_cuts.h5"));
        let cut = Cut {
            name: "00_0001".into(),
            size: 4,
            obj: vec![1.0; 16],
            seg: vec![true; 16],
            rms: vec![2.0; 16],
        };
        let mut w = CutWriter::create(&path, Compression::None).unwrap();
        w.add(cut.clone()).unwrap();
        w.finish().unwrap();
        assert_eq!(
            CutReader::open(&path).unwrap().read("00_0001").unwrap(),
            cut
        );

        let chi = d.join(format!("{stem}_chi.h5"));
        let mut w = ChiWriter::create(&chi, [1, 1, 1, 2], Compression::Low).unwrap();
        w.add("00_0001", &[0.5, 1.5]).unwrap();
        w.finish().unwrap();
        assert_eq!(
            read_chi(&chi, "00_0001").unwrap(),
            (vec![0.5, 1.5], vec![1, 1, 1, 2])
        );
    }
    assert_eq!(files(d).len(), 2 * ODD_NAMES.len());
}

// ---- Headers larger than their file ------------------------------------------------------

/// A FITS header of `cards` (key, value as written), padded to 2880 bytes.
fn header(cards: &[(&str, &str)]) -> Vec<u8> {
    let mut h = String::new();
    for (k, v) in cards {
        h.push_str(&format!("{k:<8}= {v:>20}"));
        h.push_str(&" ".repeat(80 - 30));
    }
    h.push_str(&format!("{:<80}", "END"));
    let mut b = h.into_bytes();
    b.resize(b.len().div_ceil(2880) * 2880, b' ');
    b
}

/// A 5760-byte FITS file whose primary header claims a float image of `axes` (NAXIS1
/// first): 200000 x 200000 is 149 GiB.
fn huge_image(path: &Path, axes: &[&str], extra: &[(&str, &str)]) {
    let naxis = axes.len().to_string();
    let names: Vec<String> = (1..=axes.len()).map(|k| format!("NAXIS{k}")).collect();
    let mut cards = vec![
        ("SIMPLE", "T"),
        ("BITPIX", "-32"),
        ("NAXIS", naxis.as_str()),
    ];
    cards.extend(names.iter().map(String::as_str).zip(axes.iter().copied()));
    cards.extend_from_slice(extra);
    let mut b = header(&cards);
    b.extend(vec![0u8; 2880]);
    std::fs::write(path, b).unwrap();
}

/// A 5 x 5 float image (a PSF), written byte by byte.
fn small_image(path: &Path) {
    let mut b = header(&[
        ("SIMPLE", "T"),
        ("BITPIX", "-32"),
        ("NAXIS", "2"),
        ("NAXIS1", "5"),
        ("NAXIS2", "5"),
    ]);
    let mut data: Vec<u8> = (0..25)
        .flat_map(|i| (1.0f32 + (i % 5 == 2 || i / 5 == 2) as u8 as f32).to_be_bytes())
        .collect();
    data.resize(2880, 0);
    b.extend(data);
    std::fs::write(path, b).unwrap();
}

/// An empty primary, then a binary table of `naxis2` rows of one float column `tform`.
fn huge_table(path: &Path, naxis1: &str, naxis2: &str, tform: &str, extra: &[(&str, &str)]) {
    let mut b = header(&[
        ("SIMPLE", "T"),
        ("BITPIX", "8"),
        ("NAXIS", "0"),
        ("EXTEND", "T"),
    ]);
    let mut cards = vec![
        ("XTENSION", "'BINTABLE'"),
        ("BITPIX", "8"),
        ("NAXIS", "2"),
        ("NAXIS1", naxis1),
        ("NAXIS2", naxis2),
        ("PCOUNT", "0"),
        ("GCOUNT", "1"),
        ("TFIELDS", "1"),
        ("TTYPE1", "'PSF_MASK'"),
        ("TFORM1", tform),
    ];
    cards.extend_from_slice(extra);
    b.extend(header(&cards));
    b.extend(vec![0u8; 2880]);
    std::fs::write(path, b).unwrap();
}

fn assert_one_line_naming(e: dre::Error, path: &Path, words: &str) {
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}: ", path.display())),
        "does not name {}: {msg}",
        path.display()
    );
    assert!(msg.contains(words), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

#[test]
fn a_header_larger_than_its_file_is_one_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let img = d.join("huge.fits");
    huge_image(&img, &["200000", "200000"], &[]);
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 5760);
    assert_one_line_naming(read_cube(&img).unwrap_err(), &img, "149.0 GiB");
    assert_one_line_naming(read_grid(&img).unwrap_err(), &img, "149.0 GiB");
    // The PSF reader may see it first as truncated; any one line naming it will do.
    assert_one_line_naming(read_psf(&img).unwrap_err(), &img, "");

    // A cube whose grid keys agree with its (absent) 2 x 200000 x 200000 pixels.
    let cube_file = d.join("huge_cube.fits");
    huge_image(
        &cube_file,
        &["200000", "200000", "2"],
        &[
            ("AXRAT0", "0.5"),
            ("DAXRAT", "0.5"),
            ("NAXRAT", "2"),
            ("POSANG0", "0.0"),
            ("DPOSANG", "90.0"),
            ("NPOSANG", "2"),
            ("LOGH0", "0.2"),
            ("DLOGH", "0.2"),
            ("NLOGH", "2"),
            ("BOXSIZE", "100000"),
        ],
    );
    assert_one_line_naming(read_cube(&cube_file).unwrap_err(), &cube_file, "298.0 GiB");

    // A catalogue of a billion rows, and a PSFEx file whose one row is 400 MB wide.
    let cat = d.join("huge_cat.fits");
    huge_table(&cat, "4", "1000000000", "'1E'", &[]);
    assert_one_line_naming(read_catalog(&cat).unwrap_err(), &cat, "3.7 GiB");
    let psf = d.join("huge.psf");
    huge_table(
        &psf,
        "400000000",
        "1",
        "'100000000E'",
        &[
            ("ACCEPTED", "10"),
            ("PSFAXIS1", "10000"),
            ("PSFAXIS2", "10000"),
        ],
    );
    assert_one_line_naming(read_psf(&psf).unwrap_err(), &psf, "");
    // Columns wider than the row: cfitsio's own check, said as one line.
    let wide = d.join("wide_cat.fits");
    huge_table(&wide, "4", "1", "'100000000E'", &[]);
    assert_one_line_naming(read_catalog(&wide).unwrap_err(), &wide, "HDU 2");
}

/// `gzip -c path > path.gz`, written here with stored (uncompressed) deflate blocks: no
/// child process, which would inherit (and keep locked) the HDF5 files other tests have open.
fn gzip(path: &Path) -> PathBuf {
    let data = std::fs::read(path).unwrap();
    let mut crc = !0u32;
    for &b in &data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    let mut blocks = data.chunks(65535).peekable();
    if blocks.peek().is_none() {
        gz.extend([1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let len = block.len() as u16;
        gz.push(blocks.peek().is_none() as u8);
        gz.extend(len.to_le_bytes());
        gz.extend((!len).to_le_bytes());
        gz.extend(block);
    }
    gz.extend((!crc).to_le_bytes());
    gz.extend((data.len() as u32).to_le_bytes());
    let out = PathBuf::from(format!("{}.gz", path.display()));
    std::fs::write(&out, gz).unwrap();
    out
}

#[test]
fn gzipped_fits_files_read_decompressed_and_are_checked_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cat = d.join("a_cat.fits");
    write_table(&cat, &table(500)).unwrap();
    assert_eq!(read_catalog(gzip(&cat)).unwrap(), table(500));
    let cube_file = d.join("cube.fits");
    write_cube(&cube_file, &cube(16), &[]).unwrap();
    assert_eq!(read_cube(gzip(&cube_file)).unwrap().data, cube(16).data);
    let huge = d.join("huge.fits");
    huge_image(&huge, &["200000", "200000"], &[]);
    let gz = gzip(&huge);
    assert_one_line_naming(
        read_cube(&gz).unwrap_err(),
        &gz,
        "the file, decompressed, ends before",
    );
}

#[test]
fn a_huge_or_corrupt_cached_default_cube_is_rendered_again() {
    let dir = tempfile::tempdir().unwrap();
    let cached = dir.path().join("dre_default_cube_v1.fits");
    huge_image(&cached, &["200000", "200000"], &[]);
    let path = default_cube(dir.path()).unwrap();
    assert_eq!(path, cached);
    assert_eq!(read_grid(&path).unwrap(), default_grid());
    assert_eq!(read_cube(&path).unwrap().data.len(), 2730 * 128 * 128);
    no_temporaries(dir.path());
}

// ---- Cut and chi files ----------------------------------------------------------------

const S: usize = 8;

/// Writes group `name` with datasets given as (name, writer) through the hdf5 crate, as a
/// user's own script would.
fn group_with(file: &hdf5::File, name: &str, f: impl FnOnce(&hdf5::Group)) {
    let g = file.create_group(name).unwrap();
    f(&g);
}

fn put<T: hdf5::H5Type>(g: &hdf5::Group, name: &str, v: Vec<T>, shape: (usize, usize)) {
    let a = ndarray::Array2::from_shape_vec(shape, v).unwrap();
    g.new_dataset_builder().with_data(&a).create(name).unwrap();
}

fn good(g: &hdf5::Group) {
    put(g, "obj", vec![1f32; S * S], (S, S));
    put(g, "rms", vec![1f32; S * S], (S, S));
    put(g, "seg", vec![true; S * S], (S, S));
}

#[test]
fn cut_datasets_of_the_wrong_type_or_shape_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd_cuts.h5");
    {
        let f = hdf5::File::create(&path).unwrap();
        group_with(&f, "00_0001", good);
        // Read, with one warning each: float64 images, integer segments.
        group_with(&f, "00_0002", |g| {
            put(g, "obj", vec![2f64; S * S], (S, S));
            put(g, "rms", vec![1f64; S * S], (S, S));
            put(g, "seg", vec![1u8; S * S], (S, S));
        });
        group_with(&f, "00_0003", |g| {
            put(g, "obj", vec![2i32; S * S], (S, S));
            put(g, "rms", vec![1f32; S * S], (S, S));
            put(g, "seg", vec![true; S * S], (S, S));
        });
        group_with(&f, "00_0004", |g| {
            put(g, "obj", vec![2f32; S * S], (S, S));
            put(g, "rms", vec![1f32; S * S], (S, S));
            put(g, "seg", vec![1f32; S * S], (S, S));
        });
        group_with(&f, "00_0005", |g| {
            put(g, "obj", vec![2f32; S * S], (S, S));
            put(g, "seg", vec![true; S * S], (S, S));
        });
        group_with(&f, "00_0006", |g| {
            put(g, "obj", vec![2f32; S * 2 * S], (S, 2 * S));
            put(g, "rms", vec![1f32; S * 2 * S], (S, 2 * S));
            put(g, "seg", vec![true; S * 2 * S], (S, 2 * S));
        });
        group_with(&f, "00_0007", |g| {
            put(g, "obj", vec![2f32; S * S], (S, S));
            put(g, "rms", vec![1f32; 4 * S * S], (2 * S, 2 * S));
            put(g, "seg", vec![true; S * S], (S, S));
        });
        // A dataset where a group belongs.
        f.new_dataset_builder()
            .with_data(&ndarray::arr1(&[1f32, 2.0]))
            .create("00_0008")
            .unwrap();
        group_with(&f, "00_0009", |g| {
            g.create_group("obj").unwrap();
            put(g, "rms", vec![1f32; S * S], (S, S));
            put(g, "seg", vec![true; S * S], (S, S));
        });
    }
    let r = CutReader::open(&path).unwrap();
    assert_eq!(r.read("00_0001").unwrap().obj, vec![1.0; S * S]);
    let c = r.read("00_0002").unwrap();
    assert_eq!((c.obj[0], c.rms[0], c.seg[0]), (2.0, 1.0, true));
    let p = path.display().to_string();
    let err = |name: &str| r.read(name).unwrap_err().to_string();
    let expect = [
        ("00_0003", "obj is int32, expected float32 (or float64)"),
        ("00_0004", "seg is float32, expected bool"),
        ("00_0005", "no `rms` dataset"),
        ("00_0006", "obj has shape [8, 16], not a square image"),
        ("00_0007", "differ in shape"),
        ("00_0008", "is a dataset, not a group"),
        ("00_0009", "`obj` is a group, not a dataset"),
    ];
    for (name, words) in expect {
        let e = err(name);
        assert!(e.starts_with(&format!("{p}: object {name}: ")), "{e}");
        assert!(e.contains(words), "{name}: {e}");
    }
    assert_eq!(
        r.warnings(),
        vec![
            format!("{p}: obj is float64, read as float32 (make_cuts writes float32)"),
            format!("{p}: rms is float64, read as float32 (make_cuts writes float32)"),
            format!("{p}: seg is uint8, read as non-zero = in the segment (make_cuts writes bool)"),
        ]
    );
}

#[test]
fn chi_datasets_of_the_wrong_type_or_shape_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd_chi.h5");
    {
        let f = hdf5::File::create(&path).unwrap();
        let four = ndarray::Array4::<f64>::from_elem((1, 2, 2, 3), 0.5);
        f.new_dataset_builder()
            .with_data(&four)
            .create("00_0001")
            .unwrap();
        let ints = ndarray::Array4::<i32>::from_elem((1, 2, 2, 3), 1);
        f.new_dataset_builder()
            .with_data(&ints)
            .create("00_0002")
            .unwrap();
        let flat = ndarray::Array1::<f32>::from_elem(12, 1.0);
        f.new_dataset_builder()
            .with_data(&flat)
            .create("00_0003")
            .unwrap();
    }
    assert_eq!(
        read_chi(&path, "00_0001").unwrap(),
        (vec![0.5; 12], vec![1, 2, 2, 3])
    );
    let p = path.display().to_string();
    for (name, words) in [
        ("00_0002", "chi cube is int32, expected float32"),
        ("00_0003", "chi cube has shape [12], expected 4 axes"),
        ("00_0004", "no chi cube of this object in the file"),
    ] {
        let e = read_chi(&path, name).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{p}: object {name}: ")), "{e}");
        assert!(e.contains(words), "{e}");
    }
}

/// A cut file of three objects, gzip-compressed, whose object `00_0002` has its `obj` data
/// overwritten on disk.
fn corrupted_cut_file(path: &Path) {
    let cut = |name: &str| Cut {
        name: name.into(),
        size: 16,
        obj: (0..256).map(|i| (i * 7 % 31) as f32).collect(),
        seg: vec![true; 256],
        rms: vec![1.0; 256],
    };
    let mut w = CutWriter::create(path, Compression::Medium).unwrap();
    for n in ["00_0001", "00_0002", "00_0003"] {
        w.add(cut(n)).unwrap();
    }
    w.finish().unwrap();
    let (addr, size) = {
        let f = hdf5::File::open(path).unwrap();
        let ds = f.dataset("00_0002/obj").unwrap();
        let c = ds.chunk_info(0).expect("a chunked dataset");
        (c.addr as usize, c.size as usize)
    };
    let mut bytes = std::fs::read(path).unwrap();
    bytes[addr..addr + size].fill(0xA5);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupted_hdf5_is_reported_as_corrupted_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("bad_cuts.h5");
    corrupted_cut_file(&path);
    let r = CutReader::open(&path).unwrap();
    assert!(r.read("00_0001").is_ok());
    let e = r.read("00_0002").unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: object 00_0002: `obj` unreadable (corrupted file?): ",
            path.display()
        )),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1);
    assert!(r.read("00_0003").is_ok());

    // Not HDF5 at all, and cut in half.
    let junk = d.join("junk_cuts.h5");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let e = CutReader::open(&junk).err().unwrap().to_string();
    assert!(
        e.starts_with(&format!("{}: not an HDF5 file", junk.display())),
        "{e}"
    );
    let half = d.join("half_cuts.h5");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let e = CutReader::open(&half).err().unwrap().to_string();
    assert!(
        e.starts_with(&format!("{}: truncated HDF5 file", half.display())),
        "{e}"
    );
}

#[test]
fn a_cut_file_locked_by_another_process_says_so() {
    if std::env::var("HDF5_USE_FILE_LOCKING").is_ok_and(|v| v.eq_ignore_ascii_case("FALSE")) {
        eprintln!("skipped: HDF5 file locking is off (HDF5_USE_FILE_LOCKING=FALSE)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a_cuts.h5");
    corrupted_cut_file(&path);
    // What a writing run holds: an exclusive lock on the file (flock, as HDF5 takes it).
    let held = std::fs::File::open(&path).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an open descriptor.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let e = CutReader::open(&path).err().unwrap().to_string();
    assert_eq!(
        e,
        format!(
            "{}: locked by another process (HDF5 file locking: is another run using it?)",
            path.display()
        )
    );
    drop(held);
    assert!(CutReader::open(&path).is_ok());
}

// ---- A full disk ----------------------------------------------------------------------

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped; None (with the
/// reason printed) where mounting is not permitted.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Through the mount(2) call, not the `mount` program: a child process would inherit
    /// (and keep locked) the HDF5 files other tests have open.
    fn mount(size: &str) -> Option<SmallDisk> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let target = CString::new(dir.path().as_os_str().as_bytes()).unwrap();
        let fs = CString::new("tmpfs").unwrap();
        let opts = CString::new(format!("size={size}")).unwrap();
        // SAFETY: NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                fs.as_ptr(),
                target.as_ptr(),
                fs.as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        if rc != 0 {
            eprintln!(
                "skipped: cannot mount a tmpfs here: {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(target) = std::ffi::CString::new(self.dir.path().as_os_str().as_bytes()) {
            // SAFETY: a NUL-terminated string that outlives the call.
            unsafe { libc::umount(target.as_ptr()) };
        }
    }
}

fn assert_disk_full(r: dre::Result<()>, dest: &Path, disk: &Path) {
    let e = r.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: ", dest.display())),
        "does not name {}: {e}",
        dest.display()
    );
    assert!(e.contains("No space left on device"), "{e}");
    assert_eq!(e.lines().count(), 1);
    assert!(!dest.exists(), "{} was committed", dest.display());
    no_temporaries(disk);
}

#[test]
fn a_full_disk_fails_every_writer_and_leaves_nothing() {
    let Some(disk) = SmallDisk::mount("16k") else {
        return;
    };
    let d = disk.path();
    // Small enough to stay in cfitsio's buffers until the close.
    let summary = d.join("a_dre.fits");
    assert_disk_full(write_table(&summary, &table(2000)), &summary, d);
    let cube_file = d.join("cube.fits");
    assert_disk_full(write_cube(&cube_file, &cube(24), &[]), &cube_file, d);
    let mosaic = d.join("m.fits");
    let pixels = vec![1f32; 4 * 64 * 64];
    assert_disk_full(write_mosaic(&mosaic, &pixels, 64), &mosaic, d);

    let cuts = d.join("a_cuts.h5");
    let write_cuts = || -> dre::Result<()> {
        let mut w = CutWriter::create(&cuts, Compression::None)?;
        for k in 0..4 {
            w.add(Cut {
                name: format!("00_{k:04}"),
                size: 32,
                obj: vec![k as f32; 1024],
                seg: vec![true; 1024],
                rms: vec![1.0; 1024],
            })?;
        }
        w.finish()
    };
    assert_disk_full(write_cuts(), &cuts, d);
    let chi = d.join("a_chi.h5");
    let write_chi = || -> dre::Result<()> {
        let mut w = ChiWriter::create(&chi, [1, 2, 2, 3], Compression::None)?;
        for k in 0..400 {
            w.add(&format!("00_{k:04}"), &[k as f32; 12])?;
        }
        w.finish()
    };
    assert_disk_full(write_chi(), &chi, d);

    // What fits is written whole.
    let small = d.join("b_dre.fits");
    write_table(&small, &table(3)).unwrap();
    assert_eq!(read_catalog(&small).unwrap(), table(3));
    assert_eq!(files(d), vec![small]);
}
