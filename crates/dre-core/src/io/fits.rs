//! Every FITS file of the library is opened, created and closed here: names are taken
//! literally (CFITSIO would parse `tile[1].fits` as a filter), a write is checked up to the
//! close before its temporary is renamed into place, and an HDU's data is checked against
//! the file's length before anything is allocated for it. Also header cards and key
//! reading with errors a user can act on.

use crate::error::{Error, Result};
use crate::io::atomic::PendingFile;
use fitsio::hdu::FitsHdu;
use fitsio::images::{ImageDescription, ImageType};
use fitsio::sys::fitsfile;
use fitsio::{FileOpenMode, FitsFile};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::path::Path;

/// Sets cfitsio up (its global lock, its drivers) once. cfitsio does it on first use, where
/// two threads arriving together race: one re-initialises the global lock while the other
/// holds it, and every later call waits for ever (seen in `make_cuts` and in tests). Every
/// open and create here calls this first; code that calls cfitsio itself (tests through the
/// fitsio crate) and may run on several threads calls it before.
pub fn init_cfitsio() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: fits_init_cfitsio takes no argument; Once runs it once, and every other
    // caller waits until it has returned.
    ONCE.call_once(|| unsafe {
        fitsio::sys::fits_init_cfitsio();
    });
}

/// Opens an existing FITS file read-only, its name taken literally: brackets, parentheses
/// and spaces are part of the name, not CFITSIO's extended filename syntax.
pub(crate) fn open_fits(path: &Path) -> Result<FitsFile> {
    open_literal(path, FileOpenMode::READONLY)
}

/// As [`open_fits`], read-write (tests that edit a header in place).
#[cfg(test)]
pub(crate) fn edit_fits(path: &Path) -> Result<FitsFile> {
    open_literal(path, FileOpenMode::READWRITE)
}

fn open_literal(path: &Path, mode: FileOpenMode) -> Result<FitsFile> {
    init_cfitsio();
    if !path.is_file() {
        return Err(Error::file(path, "no such file"));
    }
    check_table_headers(path)?;
    let name = c_name(path)?;
    let iomode = match mode {
        FileOpenMode::READONLY => 0,
        FileOpenMode::READWRITE => 1,
    };
    let mut fptr: *mut fitsfile = std::ptr::null_mut();
    let mut status: c_int = 0;
    // SAFETY: `name` is a NUL-terminated string that outlives the call; cfitsio sets `fptr`
    // to a file it opened, or leaves it null with a non-zero status.
    unsafe {
        fitsio::sys::ffcmsg();
        fitsio::sys::ffdkopn(&mut fptr, name.as_ptr(), iomode, &mut status);
    }
    if status != 0 || fptr.is_null() {
        return Err(Error::file(
            path,
            format!("not a readable FITS file: {}", status_message(status)),
        ));
    }
    // SAFETY: `fptr` was just opened by cfitsio with this mode.
    unsafe { wrap(fptr, mode, path) }
}

/// cfitsio (`ffgttb`, 3.49 to 4.x) goes on past a table header whose first eight cards it
/// cannot read, or whose NAXIS1 or NAXIS2 is not a non-negative integer, or whose TFIELDS is
/// above 999 (`return(*status == ...)`), and allocates and fills one column structure per
/// field claimed, or per uninitialised value: an 8 KB file with TFIELDS = 20000000 took 3 GB
/// (found by fuzzing). So the table headers of a plain FITS file are checked here, from its
/// bytes, before cfitsio reads them; anything else (gzipped, not FITS, a size this scan
/// cannot follow) is left to cfitsio to refuse.
fn check_table_headers(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    const BLOCK: u64 = 2880;
    let io = |e: std::io::Error| Error::file(path, format!("cannot read the file: {e}"));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut block = [0u8; BLOCK as usize];
    let (mut pos, mut hdu) = (0u64, 0);
    while pos + BLOCK <= len {
        hdu += 1;
        // The first 8 cards (where cfitsio reads a table's sizes) and the size keys.
        let mut first: Vec<(String, String)> = Vec::new();
        let mut sizes: Vec<(String, String)> = Vec::new();
        // cfitsio reads a table's first cards before it looks for END: they are checked
        // even in a header that runs to the end of the file.
        let mut ended = false;
        let mut card_no = 0;
        'header: loop {
            if pos + BLOCK > len {
                break;
            }
            file.seek(SeekFrom::Start(pos)).map_err(io)?;
            file.read_exact(&mut block).map_err(io)?;
            pos += BLOCK;
            for card in block.chunks_exact(80) {
                // As text for messages: a byte that is not printable ASCII shows as '?'.
                let text = |b: &[u8]| -> String {
                    b.iter()
                        .map(|&c| {
                            if (32..127).contains(&c) {
                                c as char
                            } else {
                                '?'
                            }
                        })
                        .collect()
                };
                card_no += 1;
                // The name as cfitsio reads it: up to the first blank ("END   0" ends).
                let key = text(&card[..8]).split(' ').next().unwrap_or("").to_string();
                // Not a plain FITS file (gzipped, say): cfitsio's to read or refuse.
                if hdu == 1 && card_no == 1 && key != "SIMPLE" {
                    return Ok(());
                }
                check_card(card, hdu, card_no, path)?;
                if key == "END" {
                    ended = true;
                    break 'header;
                }
                let value = match &card[8..10] {
                    b"= " => text(&card[10..]),
                    _ => String::new(),
                };
                // As cfitsio splits a value from its comment: a quoted string (kept whole
                // here), or else up to the first blank or '/'.
                let value = value.trim_start();
                let value = match value.starts_with('\'') {
                    true => value.trim_end().to_string(),
                    false => value.split([' ', '/']).next().unwrap_or("").to_string(),
                };
                // Sizes, and a tile-compressed image's (every occurrence: cfitsio may
                // find any of them).
                let numbered = |prefix: &str| {
                    key.strip_prefix(prefix)
                        .is_some_and(|n| n.parse::<u16>().is_ok())
                };
                let size_key = ["BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "ZIMAGE", "ZNAXIS"]
                    .contains(&key.as_str())
                    || numbered("NAXIS")
                    || numbered("ZNAXIS")
                    || numbered("ZTILE")
                    || numbered("ZVAL")
                    || key == "ZCMPTYPE";
                if size_key || numbered("TTYPE") {
                    sizes.push((key.clone(), value.clone()));
                }
                if first.len() < 8 {
                    first.push((key, value));
                }
            }
        }
        // cfitsio reads a quoted value up to its closing quote, whatever follows.
        let xtension = first
            .first()
            .filter(|(k, _)| k == "XTENSION")
            .and_then(|(_, v)| {
                let inner = v.strip_prefix('\'')?;
                Some(inner[..inner.find('\'')?].trim_end().to_string())
            });
        let table = xtension
            .is_some_and(|x| ["BINTABLE", "TABLE", "A3DTABLE", "3DTABLE"].contains(&x.as_str()));
        if table {
            // The mandatory keywords, in order (FITS 7.2.1, 7.3.1): anything else sends
            // cfitsio down the path above.
            let expected = [
                ("BITPIX", 8, 8),
                ("NAXIS", 2, 2),
                ("NAXIS1", 0, i64::MAX),
                ("NAXIS2", 0, i64::MAX),
                ("PCOUNT", 0, i64::MAX),
                ("GCOUNT", 1, 1),
                ("TFIELDS", 0, 999),
            ];
            for (at, (key, min, max)) in expected.into_iter().enumerate() {
                let (k, v) = first
                    .get(at + 1)
                    .map_or(("END", ""), |(k, v)| (k.as_str(), v.as_str()));
                if k != key || !v.parse::<i64>().is_ok_and(|n| (min..=max).contains(&n)) {
                    let range = match (min, max) {
                        (a, b) if a == b => format!("{a}"),
                        (a, i64::MAX) => format!("an integer >= {a}"),
                        (a, b) => format!("an integer from {a} to {b}"),
                    };
                    return Err(Error::file(
                        path,
                        format!(
                            "HDU {hdu}: corrupt table header: card {} is {k} = {v}, where FITS \
                             requires {key} = {range}",
                            at + 2
                        ),
                    ));
                }
            }
        }
        if table {
            // cfitsio copies a column name into 70 bytes with strcpy, as it reads the card:
            // an unquoted value of 70 characters overflows it (glibc's check aborts; found
            // by fuzzing). A quoted one holds at most 68.
            let unquoted = sizes
                .iter()
                .find(|(k, v)| k.starts_with("TTYPE") && !v.starts_with('\''));
            if let Some((k, v)) = unquoted {
                return Err(Error::file(
                    path,
                    format!("HDU {hdu}: corrupt table header: {k} = {v} is not a quoted string"),
                ));
            }
        }
        if !ended {
            return Ok(());
        }
        if table {
            check_tiles(&sizes, hdu, path)?;
        }
        // On to the next HDU, if this one's data size can be followed.
        // A size that is there but not an integer is refused: cfitsio might read it
        // otherwise, and the HDUs after it would go unchecked.
        let get = |k: &str, default: Option<i64>| -> Result<Option<i64>> {
            match sizes.iter().find(|(key, _)| key == k) {
                Some((_, v)) => v.parse().map(Some).map_err(|_| {
                    Error::file(path, format!("HDU {hdu}: {k} = {v} is not an integer"))
                }),
                None => Ok(default),
            }
        };
        let (Some(bitpix), Some(naxis), Some(pcount), Some(gcount)) = (
            get("BITPIX", None)?,
            get("NAXIS", None)?,
            get("PCOUNT", Some(0))?,
            get("GCOUNT", Some(1))?,
        ) else {
            return Ok(()); // missing: cfitsio refuses this HDU
        };
        let mut pixels: u128 = if naxis > 0 { 1 } else { 0 };
        for n in 1..=naxis.clamp(0, 999) {
            match get(&format!("NAXIS{n}"), None)? {
                Some(a) if a >= 0 => pixels = pixels.saturating_mul(a as u128),
                _ => return Ok(()),
            }
        }
        let bytes = (bitpix.unsigned_abs() as u128 / 8)
            .saturating_mul(gcount.max(0) as u128)
            .saturating_mul((pcount.max(0) as u128).saturating_add(pixels));
        let padded = bytes.div_ceil(BLOCK as u128) * BLOCK as u128;
        match u64::try_from(padded).ok().and_then(|b| pos.checked_add(b)) {
            Some(next) => pos = next,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// One header card as the FITS standard (4.1.2) has it, where cfitsio would otherwise
/// read it its own way (all found by fuzzing): a keyword name of letters, digits, `-` and
/// `_` then blanks (else cfitsio and this scan could disagree on where a header ends: "END?"),
/// ASCII text in the name and value, and an unquoted value that is a logical, a number or a
/// complex number. cfitsio formats a bad integer value into an 81-byte message with strncat,
/// which overflows (glibc's check aborts) for a value of 29 characters or more.
fn check_card(card: &[u8], hdu: usize, card_no: usize, path: &Path) -> Result<()> {
    let corrupt = |what: &str| {
        Error::file(
            path,
            format!("HDU {hdu}: corrupt header: card {card_no} {what}"),
        )
    };
    let name = &card[..8];
    let name_len = name.iter().position(|&c| c == b' ').unwrap_or(8);
    let valid_name = name[..name_len]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        && name[name_len..].iter().all(|&c| c == b' ');
    if !valid_name {
        return Err(corrupt(
            "has a keyword name that is not FITS (letters, digits, - and _)",
        ));
    }
    let commentary = matches!(
        &name[..name_len],
        b"COMMENT" | b"HISTORY" | b"" | b"CONTINUE"
    );
    if commentary || &card[8..10] != b"= " {
        return Ok(());
    }
    let field = &card[10..];
    if !field.iter().all(|c| (32..127).contains(c)) {
        return Err(corrupt("holds a byte that is not ASCII text"));
    }
    let field = std::str::from_utf8(field).unwrap_or_default().trim_start();
    // cfitsio formats a value it cannot read as an integer into an 81-byte message with
    // strncat, which overflows (glibc's check aborts) from 29 characters on. Values that
    // long are refused unless cfitsio reads them as integers: for the keys read as integers
    // any such value, quoted or not; for the others an unquoted value that is no number in
    // the range of a 64-bit integer (a shorter odd value cfitsio refuses or reads without
    // harm, so that odd but harmless headers still open).
    let integer_key = is_integer_key(&name[..name_len]);
    if field.starts_with('\'') && !integer_key {
        return Ok(());
    }
    // The value as cfitsio takes it: up to the comment (a quoted one, up to its quote).
    let value = match field.strip_prefix('\'') {
        Some(inner) => inner.split('\'').next().unwrap_or(""),
        None => field.split('/').next().unwrap_or(""),
    }
    .trim_end();
    if value.len() < 29 {
        return Ok(());
    }
    let integer = value.parse::<i64>().is_ok();
    let real = !integer_key
        && value
            .replace(['D', 'd'], "E")
            .parse::<f64>()
            .is_ok_and(|v| v.is_finite() && v.abs() < 9.2e18);
    if integer || real || (!integer_key && (value == "T" || value == "F")) {
        return Ok(());
    }
    Err(corrupt(&format!(
        "has a value cfitsio cannot read as a number: {value}"
    )))
}

/// Keywords cfitsio (or this program) reads as integers.
fn is_integer_key(name: &[u8]) -> bool {
    let name = std::str::from_utf8(name).unwrap_or_default();
    const EXACT: [&str; 21] = [
        "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "TFIELDS", "THEAP", "EXTVER", "EXTLEVEL", "BLANK",
        "ZBITPIX", "ZNAXIS", "ZBLANK", "ZDITHER0", "ZPCOUNT", "ZGCOUNT", "BOXSIZE", "NINDEX",
        "NAXRAT", "NPOSANG", "NLOGH", "PSFNAXIS",
    ];
    const NUMBERED: [&str; 9] = [
        "NAXIS", "TBCOL", "TNULL", "ZNAXIS", "ZTILE", "ZVAL", "PSFAXIS", "POLDEG", "POLGRP",
    ];
    EXACT.contains(&name)
        || NUMBERED.iter().any(|p| {
            name.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        })
}

/// The most pixels in one compression tile: cfitsio decompresses whole tiles, however
/// small the window read.
const MAX_TILE: u128 = 1 << 28;

/// The tiles of a tile-compressed image (`ZIMAGE = T`): cfitsio divides by ZTILEn (or by
/// ZNAXIS1 when ZTILE1 is absent) without a check, a SIGFPE for 0 (found by fuzzing), and
/// allocates a whole tile to read any pixel of it.
fn check_tiles(keys: &[(String, String)], hdu: usize, path: &Path) -> Result<()> {
    let all = |k: &str| -> Vec<&str> {
        keys.iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    // cfitsio reads a logical from its first character ("T1" is true).
    if !all("ZIMAGE").iter().any(|v| v.starts_with('T')) {
        return Ok(());
    }
    let fail = |k: &str, v: &str| {
        Error::file(
            path,
            format!("HDU {hdu}: corrupt compressed image: {k} = {v} is not a positive integer"),
        )
    };
    // cfitsio may read any of the ZNAXIS cards: every one must be a size.
    let mut naxis = None;
    for v in all("ZNAXIS") {
        match v.parse::<i64>() {
            Ok(n) if (0..=999).contains(&n) => naxis = naxis.max(Some(n)),
            _ => return Err(fail("ZNAXIS", v)),
        }
    }
    let Some(naxis) = naxis else {
        return Ok(()); // cfitsio refuses it
    };
    // RICE_1's parameters, which cfitsio reads from ZVAL1 (block size: it divides by it, a
    // SIGFPE for 0) and ZVAL2 (bytes per pixel), whatever ZNAME1 and ZNAME2 say (found by
    // fuzzing); either card may be left out (defaults 32 and 4).
    let unquoted = |v: &str| {
        // A quoted value is kept with its comment: the string is up to the next quote.
        let inner = v.strip_prefix('\'').unwrap_or(v);
        let end = inner.find('\'').unwrap_or(inner.len());
        inner[..end].trim().to_ascii_uppercase()
    };
    if all("ZCMPTYPE")
        .iter()
        .any(|v| unquoted(v).starts_with("RICE"))
    {
        for (key, what, valid) in [
            (
                "ZVAL1",
                "block size",
                &(|b: i64| (1..=1 << 16).contains(&b)) as &dyn Fn(i64) -> bool,
            ),
            ("ZVAL2", "pixel size", &|b: i64| [1, 2, 4, 8].contains(&b)),
        ] {
            for v in all(key) {
                if !v.parse::<i64>().is_ok_and(valid) {
                    return Err(Error::file(
                        path,
                        format!(
                            "HDU {hdu}: corrupt compressed image: {key} = {v} is no RICE_1 {what}"
                        ),
                    ));
                }
            }
        }
    }
    let mut tile: u128 = 1;
    for n in 1..=naxis.clamp(0, 6) {
        let largest = |key: String| -> Result<Option<u128>> {
            let values = all(&key);
            let mut max = None;
            for v in values {
                match v.parse::<i64>() {
                    Ok(x) if x >= 1 => max = max.max(Some(x as u128)),
                    _ => return Err(fail(&key, v)),
                }
            }
            Ok(max)
        };
        let axis = largest(format!("ZNAXIS{n}"))?;
        // cfitsio's default tile: whole rows.
        let side = match largest(format!("ZTILE{n}"))? {
            Some(t) => t,
            None if n == 1 => axis.unwrap_or(1),
            None => 1,
        };
        tile = tile.saturating_mul(side);
    }
    if tile > MAX_TILE {
        return Err(Error::file(
            path,
            format!(
                "HDU {hdu}: compressed image tiles of {tile} pixels are larger than any this \
                 program reads ({MAX_TILE})"
            ),
        ));
    }
    Ok(())
}

/// Creates a new FITS file at `path` (a temporary: it must not exist), its name taken
/// literally, with an image primary HDU described by `primary` or else an empty one, as
/// fitsio's `FitsFile::create` does. Errors name `dest`, the file the user will see.
pub(crate) fn create_fits(
    path: &Path,
    primary: Option<&ImageDescription>,
    dest: &Path,
) -> Result<FitsFile> {
    init_cfitsio();
    let name = c_name(dest).and_then(|_| c_name(path))?;
    let mut fptr: *mut fitsfile = std::ptr::null_mut();
    let mut status: c_int = 0;
    // SAFETY: as in `open_literal`.
    unsafe {
        fitsio::sys::ffcmsg();
        fitsio::sys::ffdkinit(&mut fptr, name.as_ptr(), &mut status);
    }
    if status != 0 || fptr.is_null() {
        return Err(Error::file(
            dest,
            format!("cannot create the file: {}", status_message(status)),
        ));
    }
    // SAFETY: `fptr` was just created by cfitsio, read-write.
    let mut f = unsafe { wrap(fptr, FileOpenMode::READWRITE, dest)? };
    let made = match primary {
        // fitsio names a custom primary `_PRIMARY`; kept, so that outputs stay as they were.
        Some(desc) => f.create_image("_PRIMARY".to_string(), desc).map(drop),
        None => {
            let mut status = 0;
            // SAFETY: `f` is open read-write; a null axis array is valid for NAXIS = 0.
            unsafe {
                fitsio::sys::ffphps(f.as_raw(), 8, 0, std::ptr::null_mut(), &mut status);
            }
            fitsio::errors::check_status(status)
        }
    };
    if let Err(e) = made {
        let _ = close_fits(f, dest);
        return Err(Error::file(dest, fits_message(e)));
    }
    Ok(f)
}

/// Closes a file, flushing CFITSIO's buffers, and reports whether everything reached the
/// file: dropping a `FitsFile` closes it without a word, so a full disk would go unseen.
pub(crate) fn close_fits(mut f: FitsFile, dest: &Path) -> Result<()> {
    let mut status: c_int = 0;
    // SAFETY: `f` is open; cfitsio frees the file whatever the status, so `f` must not be
    // dropped (its Drop would close it again): it is forgotten, leaking only its path.
    unsafe {
        fitsio::sys::ffcmsg();
        fitsio::sys::ffclos(f.as_raw(), &mut status);
    }
    std::mem::forget(f);
    if status != 0 {
        // The OS's reason (ENOSPC, EDQUOT, EIO) says more than cfitsio's "error writing".
        let os = std::io::Error::last_os_error();
        let why = match os.raw_os_error() {
            Some(5 | 27 | 28 | 30 | 122) => format!("{os}; "),
            _ => String::new(),
        };
        return Err(Error::file(
            dest,
            format!(
                "could not write the file completely: {why}{}",
                status_message(status)
            ),
        ));
    }
    Ok(())
}

/// Writes a new FITS file whole or not at all: `fill` writes it through a temporary beside
/// `dest` created with `primary` (see [`create_fits`]); the close is checked before the
/// temporary is renamed into place.
pub(crate) fn write_fits(
    dest: &Path,
    primary: Option<&ImageDescription>,
    fill: impl FnOnce(&mut FitsFile) -> Result<()>,
) -> Result<()> {
    let pending = PendingFile::new(dest)?;
    let mut f = pending.create(|tmp| create_fits(tmp, primary, dest))?;
    let filled = fill(&mut f);
    let closed = close_fits(f, dest);
    filled?;
    closed?;
    pending.commit()
}

/// # Safety
///
/// `fptr` must be a file cfitsio opened in `mode`, owned by no one else.
unsafe fn wrap(fptr: *mut fitsfile, mode: FileOpenMode, path: &Path) -> Result<FitsFile> {
    // SAFETY: the caller's promise.
    match unsafe { FitsFile::from_raw(fptr, mode) } {
        Ok(f) => Ok(f),
        Err(e) => {
            let mut status = 0;
            // SAFETY: not wrapped, so closed here once.
            unsafe { fitsio::sys::ffclos(fptr, &mut status) };
            Err(Error::file(path, fits_message(e)))
        }
    }
}

/// The path as cfitsio takes it: its bytes, which must hold no NUL.
fn c_name(path: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::file(path, "the file name holds a NUL byte"))
}

/// cfitsio's text for `status`, and the message stack's first line when it says more.
fn status_message(status: c_int) -> String {
    let mut text = [0 as c_char; 31];
    let mut first = [0 as c_char; 81];
    // SAFETY: the buffers have cfitsio's sizes (FLEN_STATUS 31, FLEN_ERRMSG 81).
    let (text, detail) = unsafe {
        fitsio::sys::ffgerr(status, text.as_mut_ptr());
        let got = fitsio::sys::ffgmsg(first.as_mut_ptr());
        fitsio::sys::ffcmsg();
        let text = CStr::from_ptr(text.as_ptr()).to_string_lossy().into_owned();
        let detail = (got != 0).then(|| {
            CStr::from_ptr(first.as_ptr())
                .to_string_lossy()
                .into_owned()
        });
        (text, detail)
    };
    // A first message ending in ':' only announces the (temporary) file name that follows.
    match detail {
        Some(d) if !d.trim().is_empty() && !d.trim().ends_with(':') && d.trim() != text.trim() => {
            format!("{} ({}; cfitsio status {status})", text.trim(), d.trim())
        }
        _ => format!("{} (cfitsio status {status})", text.trim()),
    }
}

/// Attaches the file being written to a fitsio error; a write error (a full disk) says the
/// OS's reason, read as soon as the write failed.
pub(crate) trait AtWrite<T> {
    fn at_write(self, dest: &Path) -> Result<T>;
}

impl<T> AtWrite<T> for fitsio::errors::Result<T> {
    fn at_write(self, dest: &Path) -> Result<T> {
        const WRITE_ERROR: c_int = 106;
        self.map_err(|e| match e {
            fitsio::errors::Error::Fits(fe) if fe.status == WRITE_ERROR => {
                let os = std::io::Error::last_os_error();
                Error::file(
                    dest,
                    format!(
                        "could not write the file completely: {os}; {} (cfitsio status {})",
                        fe.message, fe.status
                    ),
                )
            }
            e => Error::file(dest, fits_message(e)),
        })
    }
}

/// cfitsio's own words, without the Debug dressing of fitsio's error.
pub(crate) fn fits_message(e: fitsio::errors::Error) -> String {
    match e {
        fitsio::errors::Error::Fits(f) => format!("{} (cfitsio status {})", f.message, f.status),
        e => e.to_string(),
    }
}

/// The number of HDUs of `f`, the file at `path`. Unlike fitsio's `num_hdus`, which stops
/// silently at the first HDU cfitsio cannot read, a corrupt header is an error naming it.
pub(crate) fn count_hdus(f: &mut FitsFile, path: &Path) -> Result<usize> {
    const END_OF_FILE: c_int = 107;
    let mut n = 0;
    loop {
        let (mut status, mut kind): (c_int, c_int) = (0, 0);
        // SAFETY: `f` is open; HDU numbers count from 1.
        unsafe {
            fitsio::sys::ffcmsg();
            fitsio::sys::ffmahd(f.as_raw(), n as c_int + 1, &mut kind, &mut status);
        }
        match status {
            0 => n += 1,
            END_OF_FILE if n > 0 => break,
            s => {
                return Err(Error::file(
                    path,
                    format!("HDU {}: unreadable header: {}", n + 1, status_message(s)),
                ))
            }
        }
    }
    // Back to the primary HDU, where fitsio expects a freshly opened file.
    let (mut status, mut kind): (c_int, c_int) = (0, 0);
    // SAFETY: as above; HDU 1 exists.
    unsafe { fitsio::sys::ffmahd(f.as_raw(), 1, &mut kind, &mut status) };
    Ok(n)
}

/// Moves to HDU `i` (from 0) of `f`, the file at `path`, and checks that the data its
/// header declares lies within the file, so that no reader allocates for data that is not
/// there (a 5 KB file may claim a 200000 x 200000 image).
pub(crate) fn checked_hdu(f: &mut FitsFile, i: usize, path: &Path) -> Result<FitsHdu> {
    check_describable(f, i, path)?;
    let hdu = f
        .hdu(i)
        .map_err(|e| Error::file(path, format!("HDU {}: {}", i + 1, fits_message(e))))?;
    check_data_in_file(f, i, path)?;
    check_compressed_tiles(f, i, path)?;
    Ok(hdu)
}

/// For a tile-compressed image, checks that every tile's stored bytes lie in the table's
/// heap (PCOUNT bytes): cfitsio allocates a tile's buffer from its descriptor, which a
/// corrupt file sets to anything (4 GB for a 9 KB file; found by fuzzing).
fn check_compressed_tiles(f: &mut FitsFile, i: usize, path: &Path) -> Result<()> {
    use fitsio::sys::{ffgcno, ffgdesll, ffgtclll, fits_is_compressed_image};
    let fail = |what: String| Error::file(path, format!("HDU {}: {what}", i + 1));
    let mut status: c_int = 0;
    // SAFETY: `f` is open at HDU `i`.
    if unsafe { fits_is_compressed_image(f.as_raw(), &mut status) } == 0 || status != 0 {
        return Ok(());
    }
    let key = |f: &mut FitsFile, k: &CStr| -> Result<i64> {
        match integer_key(f, k) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(fail(format!(
                "compressed image: {k:?}: {}",
                status_message(202)
            ))),
            Err(s) => Err(fail(format!(
                "compressed image: {k:?}: {}",
                status_message(s)
            ))),
        }
    };
    let heap = key(f, c"PCOUNT")?;
    let rows = key(f, c"NAXIS2")?;
    for column in [
        c"COMPRESSED_DATA",
        c"GZIP_COMPRESSED_DATA",
        c"UNCOMPRESSED_DATA",
    ] {
        let (mut col, mut s) = (0, 0);
        // SAFETY: as above; cfitsio only reads the template.
        unsafe { ffgcno(f.as_raw(), 0, column.as_ptr().cast_mut(), &mut col, &mut s) };
        if s != 0 {
            continue; // no such column
        }
        let (mut kind, mut repeat, mut width) = (0, 0i64, 0i64);
        // SAFETY: as above; `col` is a column of this table.
        unsafe { ffgtclll(f.as_raw(), col, &mut kind, &mut repeat, &mut width, &mut s) };
        if s != 0 {
            return Err(fail(format!("compressed image: {}", status_message(s))));
        }
        for row in 1..=rows {
            let (mut len, mut at) = (0i64, 0i64);
            // SAFETY: as above; `row` is within the table's rows.
            unsafe { ffgdesll(f.as_raw(), col, row, &mut len, &mut at, &mut s) };
            let end = (len as i128) * (width.max(1) as i128) + at as i128;
            if s != 0 || len < 0 || at < 0 || end > heap as i128 {
                return Err(fail(format!(
                    "corrupt compressed image: tile {row} claims {len} values at byte {at} of \
                     a heap of {heap} bytes"
                )));
            }
        }
    }
    Ok(())
}

/// Checks that fitsio can describe HDU `i` (from 0) of `f`, the file at `path`: its
/// description (`FitsFile::hdu`) panics, where an error is due, on an image type it does
/// not know (BITPIX 64 with BZERO 2^63) and on a column type it cannot parse (variable-length
/// `P`/`Q`, complex `C`/`M`; found by fuzzing). Leaves `f` at that HDU.
pub(crate) fn check_describable(f: &mut FitsFile, i: usize, path: &Path) -> Result<()> {
    let hdu = i + 1;
    let fail = |what: String| Error::file(path, format!("HDU {hdu}: {what}"));
    let (mut status, mut kind): (c_int, c_int) = (0, 0);
    // SAFETY: `f` is open; HDU numbers count from 1.
    unsafe {
        fitsio::sys::ffcmsg();
        fitsio::sys::ffmahd(f.as_raw(), hdu as c_int, &mut kind, &mut status);
    }
    if status != 0 {
        return Err(fail(format!(
            "unreadable header: {}",
            status_message(status)
        )));
    }
    match kind {
        0 => {
            let (mut naxis, mut bitpix) = (0, 0);
            // SAFETY: `f` is open at an image HDU.
            unsafe {
                fitsio::sys::ffgidm(f.as_raw(), &mut naxis, &mut status);
                fitsio::sys::ffgiet(f.as_raw(), &mut bitpix, &mut status);
            }
            if status != 0 {
                return Err(fail(format!(
                    "unreadable image header: {}",
                    status_message(status)
                )));
            }
            if ![8, 10, 16, 20, 32, 40, 64, -32, -64].contains(&bitpix) {
                return Err(fail(format!(
                    "unsupported image type (BITPIX with BZERO/BSCALE gives cfitsio type {bitpix})"
                )));
            }
        }
        1 | 2 => {
            let mut ncols: c_int = 0;
            // SAFETY: `f` is open at a table HDU.
            unsafe { fitsio::sys::ffgncl(f.as_raw(), &mut ncols, &mut status) };
            for col in 1..=ncols.max(0) {
                let mut name = [0 as c_char; 71];
                let mut dtype = [0 as c_char; 71];
                let mut repeat = 0;
                // SAFETY: buffers of FLEN_VALUE (71), as fitsio passes; null for the rest.
                let dtype = unsafe {
                    fitsio::sys::ffgbcl(
                        f.as_raw(),
                        col,
                        name.as_mut_ptr(),
                        std::ptr::null_mut(),
                        dtype.as_mut_ptr(),
                        &mut repeat,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        &mut status,
                    );
                    CStr::from_ptr(dtype.as_ptr())
                        .to_string_lossy()
                        .into_owned()
                };
                if status != 0 {
                    return Err(fail(format!("column {col}: {}", status_message(status))));
                }
                // fitsio's parse: digits, then one of these letters.
                let letter = dtype
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .chars()
                    .next();
                if !matches!(
                    letter,
                    Some(
                        'L' | 'X' | 'B' | 'S' | 'E' | 'J' | 'D' | 'I' | 'K' | 'A' | 'U' | 'V' | 'W'
                    )
                ) {
                    return Err(fail(format!(
                        "column {col} has a type this program cannot read (TFORM type {dtype:?}: \
                         variable-length or complex)"
                    )));
                }
            }
            if status != 0 {
                return Err(fail(format!(
                    "unreadable table header: {}",
                    status_message(status)
                )));
            }
        }
        k => return Err(fail(format!("unknown HDU type {k}"))),
    }
    Ok(())
}

/// Integer keyword `name` of the current HDU of `f`: None when absent, Err(cfitsio status)
/// when it is no integer. Read as text and parsed here: cfitsio's own integer read
/// (`ffgkyjj`) formats a long unreadable value into a message that overflows (a glibc abort;
/// found by fuzzing).
fn integer_key(f: &mut FitsFile, name: &CStr) -> std::result::Result<Option<i64>, c_int> {
    const KEY_NOT_FOUND: c_int = 202;
    const BAD_INTEGER: c_int = 407;
    let mut value = [0 as c_char; 71];
    let mut s = 0;
    // SAFETY: `f` is open; `name` is NUL-terminated; `value` holds FLEN_VALUE (71) bytes,
    // what cfitsio writes at most; a null comment is allowed.
    unsafe {
        fitsio::sys::ffgkey(
            f.as_raw(),
            name.as_ptr(),
            value.as_mut_ptr(),
            std::ptr::null_mut(),
            &mut s,
        )
    };
    match s {
        0 => {}
        KEY_NOT_FOUND => return Ok(None),
        s => return Err(s),
    }
    // SAFETY: cfitsio NUL-terminates the value it wrote.
    let text = unsafe { CStr::from_ptr(value.as_ptr()) }.to_string_lossy();
    let text = text.trim();
    match text.parse::<i64>() {
        Ok(v) => Ok(Some(v)),
        // cfitsio reads "8." or "8.0E0" as an integer too.
        Err(_) => match text.replace(['D', 'd'], "E").parse::<f64>() {
            Ok(v) if v.fract() == 0.0 && v.abs() < 9.2e18 => Ok(Some(v as i64)),
            _ => Err(BAD_INTEGER),
        },
    }
}

/// Checks the current HDU (number `i` from 0; messages count from 1, as FITS does) of `f`
/// against the file's length.
fn check_data_in_file(f: &mut FitsFile, i: usize, path: &Path) -> Result<()> {
    let i = i + 1;
    let mut status: c_int = 0;
    let key = |f: &mut FitsFile, k: &str, default: i64, status: &mut c_int| -> i64 {
        let Ok(name) = CString::new(k) else {
            return default;
        };
        match integer_key(f, &name) {
            Ok(Some(v)) => v,
            Ok(None) => default,
            Err(s) => {
                *status = s;
                default
            }
        }
    };
    let bitpix = key(f, "BITPIX", 8, &mut status);
    let naxis = key(f, "NAXIS", 0, &mut status);
    let pcount = key(f, "PCOUNT", 0, &mut status);
    let gcount = key(f, "GCOUNT", 1, &mut status);
    if !(0..=999).contains(&naxis) {
        return Err(Error::file(path, format!("HDU {}: NAXIS = {naxis}", i + 1)));
    }
    let mut axes = Vec::with_capacity(naxis as usize);
    for k in 1..=naxis {
        axes.push(key(f, &format!("NAXIS{k}"), 0, &mut status));
    }
    if status != 0 {
        return Err(Error::file(
            path,
            format!("HDU {i}: header unreadable: {}", status_message(status)),
        ));
    }
    if axes.iter().chain([&pcount, &gcount]).any(|&v| v < 0) {
        return Err(Error::file(
            path,
            format!("HDU {i}: negative size in the header (NAXISn {axes:?}, PCOUNT {pcount}, GCOUNT {gcount})"),
        ));
    }
    // Rows of no bytes cost nothing in the file, but a reader allocates per row (found by
    // fuzzing: 10^12 rows of a `0A` column aborted the process).
    if let [0, rows] = axes[..] {
        if rows > 1 << 20 {
            return Err(Error::file(
                path,
                format!("HDU {i}: {rows} rows of 0 bytes (NAXIS1 = 0): corrupt header"),
            ));
        }
    }
    // FITS standard 4.4.1.1: |BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1 * ... * NAXISn), without
    // the padding to 2880 bytes (some writers leave it out of the last HDU).
    let pixels: u128 = match axes.len() {
        0 => 0,
        _ => axes.iter().map(|&a| a as u128).product(),
    };
    let bytes = (bitpix.unsigned_abs() as u128 / 8)
        .saturating_mul(gcount as u128)
        .saturating_mul((pcount as u128).saturating_add(pixels));
    if bytes == 0 {
        return Ok(());
    }
    let (mut head, mut start, mut end) = (0, 0, 0);
    let mut s = 0;
    // SAFETY: `f` is open at this HDU.
    unsafe { fitsio::sys::ffghadll(f.as_raw(), &mut head, &mut start, &mut end, &mut s) };
    if s != 0 {
        return Err(Error::file(
            path,
            format!("HDU {i}: header unreadable: {}", status_message(s)),
        ));
    }
    // Ask cfitsio whether the data's last byte is in the file as it reads it (a gzipped
    // file is read decompressed, so its length on disk says nothing): it loads that 2880-byte
    // record, or answers END_OF_FILE. Nothing is allocated for the data.
    let last = (start.max(0) as u128).saturating_add(bytes - 1);
    let mut s = 0;
    if let Ok(last) = i64::try_from(last) {
        const REPORT_EOF: c_int = 0;
        // SAFETY: `f` is open at this HDU; a position past the end is an error, not a read.
        unsafe { fitsio::sys::ffmbyt(f.as_raw(), last, REPORT_EOF, &mut s) };
    }
    if s != 0 || i64::try_from(last).is_err() {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as u128;
        let have = len.saturating_sub(start.max(0) as u128);
        let holds = match is_compressed(path) {
            false => format!("the file holds {} after the header", human_bytes(have)),
            true => "the file, decompressed, ends before".to_string(),
        };
        let dims: Vec<String> = axes.iter().map(i64::to_string).collect();
        return Err(Error::file(
            path,
            format!(
                "HDU {i}: the header declares {} of data ({} x BITPIX {bitpix}) but {holds} \
                 (truncated or corrupt)",
                human_bytes(bytes),
                dims.join(" x "),
            ),
        ));
    }
    Ok(())
}

/// Whether `path` is a gzip, compress, bzip2 or zip file (which cfitsio reads decompressed).
fn is_compressed(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    read.is_ok()
        && (magic[..2] == [0x1f, 0x8b]
            || magic[..2] == [0x1f, 0x9d]
            || magic[..3] == *b"BZh"
            || magic == *b"PK\x03\x04")
}

/// The most values a reader allocates for one whole image or cube whose size the file's
/// length does not bound (a tile-compressed HDU): 2^31, 8 GiB of float32.
pub(crate) const MAX_WHOLE_READ: usize = 1 << 31;

/// Fails unless a whole read of `shape` (an image HDU's axes) is below
/// [`MAX_WHOLE_READ`] values, naming `what` (e.g. "PSF image").
pub(crate) fn check_whole_read(path: &Path, shape: &[usize], what: &str) -> Result<usize> {
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_WHOLE_READ);
    n.ok_or_else(|| {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        Error::file(
            path,
            format!(
                "{what} of {} pixels is larger than any this program reads ({MAX_WHOLE_READ} values)",
                dims.join(" x ")
            ),
        )
    })
}

fn human_bytes(b: u128) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{b} bytes"),
        _ => format!("{v:.1} {}", UNITS[u]),
    }
}

/// A header card to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// Keyword, at most 8 characters (e.g. `BOXSIZE`).
    pub key: String,
    /// Integer, real or string value.
    pub value: CardValue,
    /// The card's comment (may be empty).
    pub comment: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CardValue {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Card {
    /// An integer card.
    pub fn int(key: &str, v: i64, comment: &str) -> Self {
        Self::new(key, CardValue::Int(v), comment)
    }
    /// A real card.
    pub fn float(key: &str, v: f64, comment: &str) -> Self {
        Self::new(key, CardValue::Float(v), comment)
    }
    /// A string card.
    pub fn text(key: &str, v: &str, comment: &str) -> Self {
        Self::new(key, CardValue::Text(v.to_string()), comment)
    }
    fn new(key: &str, value: CardValue, comment: &str) -> Self {
        Card {
            key: key.to_string(),
            value,
            comment: comment.to_string(),
        }
    }

    /// Writes the card into the header of `hdu` of the open file `f`.
    pub(crate) fn write(&self, f: &mut FitsFile, hdu: &FitsHdu) -> fitsio::errors::Result<()> {
        let c = self.comment.as_str();
        match &self.value {
            CardValue::Int(v) => hdu.write_key(f, &self.key, (*v, c)),
            CardValue::Float(v) => hdu.write_key(f, &self.key, (*v, c)),
            CardValue::Text(v) => hdu.write_key(f, &self.key, (v.clone(), c)),
        }
    }
}

/// Reads a numeric key; the error ([`Error::Invalid`], for the caller to place with
/// [`Error::at_file`]) says plainly when the key is missing.
pub fn read_f64_key(f: &mut FitsFile, hdu: &FitsHdu, key: &str) -> Result<f64> {
    hdu.read_key::<f64>(f, key).map_err(|e| key_error(key, e))
}

/// Reads a text key; the error ([`Error::Invalid`], for the caller to place with
/// [`Error::at_file`]) says plainly when the key is missing.
pub fn read_str_key(f: &mut FitsFile, hdu: &FitsHdu, key: &str) -> Result<String> {
    hdu.read_key::<String>(f, key)
        .map_err(|e| key_error(key, e))
}

fn key_error(key: &str, e: fitsio::errors::Error) -> Error {
    Error::Invalid(match e {
        fitsio::errors::Error::Fits(fe) if fe.status == 202 => {
            format!("missing header key {key}")
        }
        e => format!("header key {key}: {e}"),
    })
}

/// Writes a float32 image (`height` rows of `width`) as the primary HDU with `cards`, whole
/// or not at all.
pub fn write_image(
    path: impl AsRef<Path>,
    width: usize,
    height: usize,
    data: &[f32],
    cards: &[Card],
) -> Result<()> {
    let path = path.as_ref();
    let dims = [height, width];
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &dims,
    };
    write_fits(path, Some(&desc), |f| {
        let hdu = f.primary_hdu().at_write(path)?;
        hdu.write_image(f, data).at_write(path)?;
        for c in cards {
            c.write(f, &hdu).at_write(path)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::check_card;
    use std::path::Path;

    fn card(text: &[u8]) -> Vec<u8> {
        let mut c = text.to_vec();
        c.resize(80, b' ');
        c
    }

    fn checked(text: &[u8]) -> Result<(), String> {
        check_card(&card(text), 2, 7, Path::new("t.fits")).map_err(|e| e.to_string())
    }

    #[test]
    fn standard_cards_pass() {
        for c in [
            &b"NAXIS2  =                   12 / rows"[..],
            b"CRVAL1  =   1.2345678901234567890123456789D+02",
            b"OBJECT  = 'NGC 1300 / barred'  / name",
            b"SIMPLE  =                    T",
            b"CPLX    = (1.0, 2.0)",
            b"UNDEF   =",
            b"COMMENT   anything \xe9 at all",
            b"DATE-OBS= '2026-11-30'",
            b"HISTORY",
            b"END",
        ] {
            assert_eq!(checked(c), Ok(()), "{}", String::from_utf8_lossy(c));
        }
    }

    #[test]
    fn names_and_values_cfitsio_misreads_are_refused() {
        let bad_name = checked(b"END\xff").unwrap_err();
        assert!(bad_name.contains("t.fits: HDU 2: corrupt header: card 7 has a keyword name"));
        assert!(checked(b"NAXIS 1 =                   46").is_err());
        assert!(checked(b"END  =                    T").is_err());
        let not_text = checked(b"ZNAXIS  =   \x01\x02         2").unwrap_err();
        assert!(not_text.contains("not ASCII text"), "{not_text}");
        let long = checked(b"NAXIS2  =  ------------------------------3 / rows").unwrap_err();
        assert!(long.contains("cannot read as a number"), "{long}");
        let nines = [b"BITPIX  = ".as_slice(), &[b'9'; 70]].concat();
        assert!(checked(&nines).is_err());
        assert!(checked(b"NAXIS1  = '12345678901234567890123456789012'").is_err());
        // Long strings elsewhere, and long reals, are what headers hold.
        assert_eq!(
            checked(b"OBJECT  = 'a long description of the field, well over 29 characters'"),
            Ok(())
        );
        assert_eq!(
            checked(b"CRVAL1  =   1.2345678901234567890123456789D+02"),
            Ok(())
        );
        // A short odd value is left to cfitsio (it refuses it without harm).
        assert_eq!(checked(b"NAXIS2  = 12x"), Ok(()));
    }
}
