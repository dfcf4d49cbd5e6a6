//! The hot loop of the 1/8-scale JPEG decoder (src/filter/jpeg_dc.ts, `decodeHuffmanScan`), compiled to
//! WebAssembly. It decodes one Huffman scan with the fast tables the TypeScript side built and writes the DC values
//! into a plane, exactly as the TypeScript loop does. It never reports why it failed: any input it cannot decode
//! cleanly (a bad code, truncated data, a wrong restart marker, or a bug caught by a bounds check, which traps)
//! makes the TypeScript side decode the scan again itself, and that decoder names the problem. So the two agree
//! on every frame by construction, and this file only has to be fast on good ones.
#![no_std]

use core::slice;

const LDC: u32 = 9;
const LAC: u32 = 14;
const M_EOB: i32 = 1 << 6;
const S_EOB: i32 = 1 << 25;

/// A Huffman table's canonical-code arrays, for codes longer than the fast lookahead. Same layout as written by
/// the TypeScript side: maxcode[18], valoff[18] (i32), then 256 symbol bytes.
#[repr(C)]
pub struct SlowTable {
    maxcode: [i32; 18],
    valoff: [i32; 18],
    symbols: [u8; 256],
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// Returned when the scan cannot be decoded here; the caller decodes it in TypeScript, which says why.
const REDO: i32 = -1;

/// The bit reader. `acc` holds the next `nbits` bits of the scan at its top (bit 63 comes first), so a lookup is
/// `acc >> (64 - width)` and taking `n` bits is `acc <<= n`: neither waits for `nbits`, which keeps the chain of
/// dependent table lookups short. Below the valid bits `acc` may hold more of the next bytes' bits (see refill).
struct Bits<'a> {
    d: &'a [u8],
    pos: usize,
    acc: u64,
    nbits: u32,
    /// Zero bytes fed after the data ran out (a marker or the end of the input).
    fake: u32,
}

impl Bits<'_> {
    /// Tops the buffer up to 56 bits or more, with the same byte rules as the TypeScript refill.
    #[inline(always)]
    fn refill(&mut self) {
        let d = self.d;
        let n = d.len();
        // Most of the time the next eight bytes hold no 0xFF (no stuffing, no marker): take whole bytes at once.
        // All eight land below the valid bits; those beyond the whole bytes counted are the stream's next bits
        // either way, and the next refill writes the same bits there again.
        if let Some(next) = d.get(self.pos..self.pos + 8) {
            let w = u64::from_be_bytes([next[0], next[1], next[2], next[3], next[4], next[5], next[6], next[7]]);
            let x = !w;
            if (x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080) == 0 {
                let k = (63 - self.nbits) / 8;
                self.acc |= w >> self.nbits;
                self.pos += k as usize;
                self.nbits += 8 * k;
                return;
            }
        }
        // Byte by byte: clear what lies below the valid bits first, as a marker's fake zeros must read as zeros.
        self.acc &= !(u64::MAX >> self.nbits);
        while self.nbits <= 56 {
            let mut byte = 0u64;
            let pos = self.pos;
            if pos < n {
                let b = d[pos];
                if b != 0xff {
                    self.pos = pos + 1;
                    byte = b as u64;
                } else if pos + 1 < n && d[pos + 1] == 0 {
                    self.pos = pos + 2;
                    byte = 0xff;
                } else {
                    self.fake += 1;
                }
            } else {
                self.fake += 1;
            }
            self.acc |= byte << (56 - self.nbits);
            self.nbits += 8;
        }
    }

    /// The next `bits` bits (1 to 63), not taken.
    #[inline(always)]
    fn peek(&self, bits: u32) -> u64 {
        self.acc >> (64 - bits)
    }

    /// Takes `n` bits (at most the valid ones, and below 64) without reading them.
    #[inline(always)]
    fn skip(&mut self, n: u32) {
        self.acc <<= n;
        self.nbits -= n;
    }

    #[inline(always)]
    fn take(&mut self, s: u32) -> u32 {
        if s == 0 {
            return 0;
        }
        let v = self.peek(s) as u32;
        self.skip(s);
        v
    }
}

/// A symbol decoded bit by bit through the canonical code, from the next 16 bits `next16`: the symbol and its
/// code length, or None for a code the table does not have. Takes values, not the reader, so that the reader's
/// fields stay in locals of the hot loop.
#[inline(never)]
fn slow_symbol(t: &SlowTable, next16: u32) -> Option<(u32, u32)> {
    for l in 1..=16u32 {
        let code = (next16 >> (16 - l)) as i32;
        if code <= t.maxcode[l as usize] {
            let at = code + t.valoff[l as usize];
            return t.symbols.get(at as usize).map(|&s| (s as u32, l));
        }
    }
    None
}

/// Moves past the restart marker RSTn expected at a restart boundary (as `expectRestart`).
fn expect_restart(d: &[u8], from: usize, n: u32) -> Option<usize> {
    let len = d.len();
    let mut i = from;
    loop {
        while i < len && d[i] != 0xff {
            i += 1;
        }
        if i >= len {
            return None;
        }
        let mut j = i + 1;
        while j < len && d[j] == 0xff {
            j += 1;
        }
        if j >= len {
            return None;
        }
        let m = d[j] as u32;
        if m == 0 {
            i = j + 1;
            continue;
        }
        return if m == 0xd0 + n { Some(j + 1) } else { None };
    }
}

/// Decodes a Huffman scan: the arguments are those of `decodeHuffmanScan`, as offsets into this memory. Returns
/// the byte position after the last consumed byte, or REDO.
///
/// # Safety
/// Every pointer and length must describe memory inside this instance, as the TypeScript side lays it out.
#[no_mangle]
pub unsafe extern "C" fn decode_scan(
    d: *const u8,
    n: u32,
    start: u32,
    tabs: *const i32,
    tabs_len: u32,
    slow: *const SlowTable,
    slow_len: u32,
    blk: *const i32,
    nb: u32,
    mcus_x: u32,
    mcus_y: u32,
    row_stride: u32,
    col_stride: u32,
    plane: *mut i32,
    plane_len: u32,
    ri: u32,
    with_ac: u32,
    al: u32,
) -> i32 {
    let d = slice::from_raw_parts(d, n as usize);
    let tabs = slice::from_raw_parts(tabs, tabs_len as usize);
    let slow = slice::from_raw_parts(slow, slow_len as usize);
    let blk = slice::from_raw_parts(blk, nb as usize * 6);
    let plane = slice::from_raw_parts_mut(plane, plane_len as usize);
    match scan(
        d,
        start as usize,
        tabs,
        slow,
        blk,
        mcus_x,
        mcus_y,
        row_stride,
        col_stride,
        plane,
        ri,
        with_ac != 0,
        al,
    ) {
        Some(pos) => pos as i32,
        None => REDO,
    }
}

#[allow(clippy::too_many_arguments)]
fn scan(
    d: &[u8],
    start: usize,
    tabs: &[i32],
    slow: &[SlowTable],
    blk: &[i32],
    mcus_x: u32,
    mcus_y: u32,
    row_stride: u32,
    col_stride: u32,
    plane: &mut [i32],
    ri: u32,
    with_ac: bool,
    al: u32,
) -> Option<usize> {
    // Every table offset a block names must leave room for a whole table, so the lookups below need no check.
    for b in blk.chunks_exact(6) {
        if b[0] < 0 || b[1] < 0 || b[2] < 0 || b[3] < 0 || b[4] < 0 || b[4] > 3 {
            return None;
        }
        if b[0] as usize + (1 << LDC) > tabs.len() || (with_ac && b[1] as usize + (1 << LAC) > tabs.len()) {
            return None;
        }
        if b[2] as usize >= slow.len() || (with_ac && b[3] as usize >= slow.len()) {
            return None;
        }
    }
    let mut bits = Bits {
        d,
        pos: start,
        acc: 0,
        nbits: 0,
        fake: 0,
    };
    let mut preds = [0i32; 4];
    let mut todo = ri;
    let mut rst = 0u32;
    for my in 0..mcus_y {
        let row_base = my * row_stride;
        for mx in 0..mcus_x {
            if ri != 0 {
                if todo == 0 {
                    bits.pos = expect_restart(d, bits.pos, rst)?;
                    bits.acc = 0;
                    bits.nbits = 0;
                    bits.fake = 0;
                    preds = [0; 4];
                    rst = (rst + 1) & 7;
                    todo = ri;
                }
                todo -= 1;
            }
            let base = row_base + mx * col_stride;
            for b in blk.chunks_exact(6) {
                if bits.nbits < 32 {
                    bits.refill();
                }
                let e = unsafe { *tabs.get_unchecked(b[0] as usize + bits.peek(LDC) as usize) };
                let diff = if (e & 31) != 0 {
                    // As for AC entries below: bits 0-5 are the bits taken (bit 5 is always clear here).
                    bits.acc = bits.acc.wrapping_shl(e as u32);
                    bits.nbits -= (e & 31) as u32;
                    e >> 8
                } else {
                    let (s, l) = slow_symbol(&slow[b[2] as usize], bits.peek(16) as u32)?;
                    bits.skip(l);
                    if s > 11 {
                        return None;
                    }
                    let mut v = bits.take(s) as i32;
                    if s > 0 && v < 1 << (s - 1) {
                        v -= (1 << s) - 1;
                    }
                    v
                };
                let c = b[4] as usize;
                let pred = preds[c].wrapping_add(diff);
                preds[c] = pred;
                let delta = b[5];
                if delta >= 0 {
                    if let Some(p) = plane.get_mut(base as usize + delta as usize) {
                        *p = pred.wrapping_shl(al);
                    }
                }
                if !with_ac {
                    continue;
                }
                // The block's AC table (its offset was checked above), so that a lookup adds only the index.
                let act = unsafe { tabs.as_ptr().add(b[1] as usize) };
                let mut k = 1u32;
                loop {
                    if bits.nbits < 32 {
                        bits.refill();
                    }
                    let e = unsafe { *act.add(bits.peek(LAC) as usize) };
                    let ml = (e as u32) & 63;
                    if ml != 0 {
                        let f = ((e as u32) >> 7) & 127;
                        if k + f <= 64 {
                            // The entry's low six bits are `ml`, and a shift counts modulo 64: shifting by the
                            // entry itself saves the mask on the path from this lookup to the next.
                            bits.acc = bits.acc.wrapping_shl(e as u32);
                            bits.nbits -= ml;
                            k += f;
                            if (e & M_EOB) != 0 || k == 64 {
                                break;
                            }
                            continue;
                        }
                        bits.skip(((e as u32) >> 14) & 31);
                        if (e & S_EOB) != 0 {
                            break;
                        }
                        k += ((e as u32) >> 19) & 63;
                    } else {
                        let (rs, l) = slow_symbol(&slow[b[3] as usize], bits.peek(16) as u32)?;
                        bits.skip(l);
                        let r = rs >> 4;
                        let s = rs & 15;
                        if s == 0 {
                            if r != 15 {
                                break;
                            }
                            k += 16;
                        } else {
                            bits.take(s);
                            k += r + 1;
                        }
                    }
                    if k >= 64 {
                        if k > 64 {
                            return None;
                        }
                        break;
                    }
                }
            }
            // Zeros fed past the end of the data may be looked ahead into, never consumed.
            if bits.fake != 0 && bits.fake * 8 > bits.nbits {
                return None;
            }
        }
    }
    Some(bits.pos)
}
