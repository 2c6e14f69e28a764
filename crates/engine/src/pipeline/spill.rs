//! Held rows beyond the memory budget, in private temporary files.
//!
//! A connection open from the first frame to the last holds every row
//! behind it until the end. Rather than read the capture again, the
//! oldest held rows go, in frame order and in compact form, to a
//! [`RowFile`] (a FIFO on an unlinked temporary file), read back as the
//! rows are released: the disk takes 65 bytes per row held, memory a
//! bounded number of rows. The verdict of a connection whose rows all
//! wait there goes, once settled, to a [`VerdictFile`] (a record of
//! [`SETTLED_BYTES`] per connection id, behind a small cache), so that
//! memory stays flat however many connections settle behind a long one.
//! Unlinked files disappear with the process, whatever ends it.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU64;

use crate::tracking::connection::Connection;
use crate::tracking::idle::IdleRst;
use crate::tracking::inference::{
    CallSteps, ClientChoice, ClosedBy, Closer, ConnVerdict, EndpointVerdict, Outcome, Role, Unseen,
};
use crate::tracking::origin::Why;

/// Bytes moved between memory and a file at a time.
const CHUNK: usize = 1 << 20;

/// A FIFO of fixed-size records on a temporary file: written at its end,
/// read from its start, emptied (and the file truncated) whenever the
/// reads catch up with the writes.
pub struct RowFile<const N: usize> {
    file: File,
    /// Records written but not yet on the file; they follow the file's.
    pending_write: Vec<u8>,
    /// Bytes on the file.
    on_file: u64,
    /// Records read from the file (or taken from `pending_write`), not
    /// yet consumed; `read_at` is the next one.
    read_buf: Vec<u8>,
    read_at: usize,
    /// Where `read_buf` ends, as an offset of the file's.
    read_end: u64,
    /// Records pushed and not yet consumed.
    len: u64,
}

impl<const N: usize> RowFile<N> {
    pub fn new() -> io::Result<Self> {
        Ok(RowFile {
            file: tempfile::tempfile()?,
            pending_write: Vec::with_capacity(CHUNK),
            on_file: 0,
            read_buf: Vec::new(),
            read_at: 0,
            read_end: 0,
            len: 0,
        })
    }

    /// Records pushed and not yet consumed.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn push(&mut self, record: &[u8; N]) -> io::Result<()> {
        self.pending_write.extend_from_slice(record);
        self.len += 1;
        if self.pending_write.len() + N > CHUNK {
            self.file.write_all_at(&self.pending_write, self.on_file)?;
            self.on_file += self.pending_write.len() as u64;
            self.pending_write.clear();
        }
        Ok(())
    }

    /// The oldest record not consumed, if any.
    pub fn front(&mut self) -> io::Result<Option<&[u8; N]>> {
        if self.len == 0 {
            return Ok(None);
        }
        if self.read_at == self.read_buf.len() {
            self.refill()?;
        }
        let record = &self.read_buf[self.read_at..self.read_at + N];
        Ok(Some(record.try_into().expect("N bytes")))
    }

    /// Consumes the record [`RowFile::front`] returned.
    pub fn pop(&mut self) {
        debug_assert!(self.len > 0 && self.read_at < self.read_buf.len());
        self.read_at += N;
        self.len -= 1;
        if self.len == 0 {
            // Empty: start the file again from its beginning.
            self.read_buf.clear();
            self.read_at = 0;
            self.read_end = 0;
            self.on_file = 0;
            self.pending_write.clear();
            // Failing to give the blocks back only costs disk space.
            let _ = self.file.set_len(0);
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.read_at = 0;
        if self.read_end < self.on_file {
            let want = (self.on_file - self.read_end).min((CHUNK / N * N) as u64) as usize;
            self.read_buf.resize(want, 0);
            self.file.read_exact_at(&mut self.read_buf, self.read_end)?;
            self.read_end += want as u64;
        } else {
            // Everything on the file was read: the rest is still in memory.
            // It moves to the read side; the file goes on after it.
            std::mem::swap(&mut self.read_buf, &mut self.pending_write);
            self.pending_write.clear();
            self.on_file += self.read_buf.len() as u64;
            self.read_end = self.on_file;
        }
        Ok(())
    }
}

/// What a held row needs of its connection once the connection left the
/// flow table: its endpoints and its verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settled {
    /// In the connection's order (index 0 sent its first segment).
    pub endpoints: [SocketAddr; 2],
    pub verdict: ConnVerdict,
}

/// Bytes of a [`Settled`] on a [`VerdictFile`]: a presence byte, the two
/// endpoints (19 bytes each), the verdict (every field).
pub const SETTLED_BYTES: usize = 1 + 2 * ADDR_BYTES + 2 * ENDPOINT_BYTES + 21;
const ADDR_BYTES: usize = 19;
const ENDPOINT_BYTES: usize = 7 + Why::BYTES;

/// Writes fixed-width fields one after the other.
struct Packer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Packer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.out[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
    fn byte(&mut self, b: impl Into<u8>) {
        self.bytes(&[b.into()]);
    }
}

/// Reads what a [`Packer`] wrote, in the same order.
struct Unpacker<'a> {
    from: &'a [u8],
    at: usize,
}

impl Unpacker<'_> {
    fn array<const K: usize>(&mut self) -> [u8; K] {
        let out = self.from[self.at..self.at + K].try_into().expect("K bytes");
        self.at += K;
        out
    }
    fn byte(&mut self) -> u8 {
        self.array::<1>()[0]
    }
    fn flag(&mut self) -> bool {
        self.byte() != 0
    }
    /// One of `all` by its index (the default for an index out of range:
    /// the file is this process's own, so it never is).
    fn pick<T: Copy + Default>(&mut self, all: &[T]) -> T {
        all.get(usize::from(self.byte()))
            .copied()
            .unwrap_or_default()
    }
}

fn index_of<T: PartialEq>(all: &[T], value: &T) -> u8 {
    all.iter().position(|v| v == value).unwrap_or(0) as u8
}

impl Settled {
    pub fn of(conn: &Connection, verdict: ConnVerdict) -> Settled {
        Settled {
            endpoints: [conn.endpoints[0].addr, conn.endpoints[1].addr],
            verdict,
        }
    }

    /// Every field in [`SETTLED_BYTES`] bytes, the first one 1 (a record
    /// of zeros is no record).
    pub fn to_bytes(self) -> [u8; SETTLED_BYTES] {
        let mut out = [0; SETTLED_BYTES];
        let mut p = Packer {
            out: &mut out,
            at: 0,
        };
        p.byte(1);
        for addr in self.endpoints {
            let ip = match addr.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            p.byte(addr.is_ipv6());
            p.bytes(&ip.octets());
            p.bytes(&addr.port().to_le_bytes());
        }
        // Every field by name: a field added to the verdict does not
        // compile here until it has its bytes.
        let ConnVerdict {
            endpoints,
            client: ClientChoice { index, guessed },
            simultaneous,
            outcome,
            closer,
            idle_reset,
            widened,
            end_unseen_at,
        } = self.verdict;
        for EndpointVerdict {
            calls,
            role,
            closed_by,
            stopped_reading_at_fin,
            rst_forged,
            forged_why,
        } in endpoints
        {
            p.bytes(&calls.to_bytes());
            p.byte(index_of(Role::ALL, &role));
            p.byte(index_of(ClosedBy::ALL, &closed_by));
            p.byte(stopped_reading_at_fin);
            p.byte(rst_forged);
            p.bytes(&forged_why.to_bytes());
        }
        p.byte(index != 0);
        p.byte(guessed);
        p.byte(simultaneous);
        p.byte(index_of(Outcome::ALL, &outcome));
        p.byte(index_of(Closer::ALL, &closer));
        p.byte(idle_reset.is_some());
        let idle = idle_reset.unwrap_or(IdleRst {
            idle_ms: 0,
            sender: 0,
            stray: false,
        });
        p.bytes(&idle.idle_ms.to_le_bytes());
        p.byte(idle.sender != 0);
        p.byte(idle.stray);
        // 0 for none, else the index plus one.
        p.byte(widened.map_or(0, |w| index_of(Unseen::ALL, &w) + 1));
        p.bytes(&end_unseen_at.map_or(0, NonZeroU64::get).to_le_bytes());
        debug_assert_eq!(p.at, SETTLED_BYTES);
        out
    }

    /// The [`Settled`] of [`Settled::to_bytes`], `None` for no record.
    pub fn from_bytes(bytes: &[u8; SETTLED_BYTES]) -> Option<Settled> {
        let mut u = Unpacker { from: bytes, at: 0 };
        if !u.flag() {
            return None;
        }
        let mut addr = || {
            let v6 = u.flag();
            let ip = Ipv6Addr::from(u.array::<16>());
            let port = u16::from_le_bytes(u.array());
            let ip = match ip.to_ipv4_mapped() {
                Some(v4) if !v6 => IpAddr::V4(v4),
                _ => IpAddr::V6(ip),
            };
            SocketAddr::new(ip, port)
        };
        let endpoints = [addr(), addr()];
        let mut endpoint = || EndpointVerdict {
            calls: CallSteps::from_bytes(u.array()),
            role: u.pick(Role::ALL),
            closed_by: u.pick(ClosedBy::ALL),
            stopped_reading_at_fin: u.flag(),
            rst_forged: u.flag(),
            forged_why: Why::from_bytes(&u.array()),
        };
        let verdict_endpoints = [endpoint(), endpoint()];
        let client = ClientChoice {
            index: usize::from(u.flag()),
            guessed: u.flag(),
        };
        let simultaneous = u.flag();
        let outcome = u.pick(Outcome::ALL);
        let closer = u.pick(Closer::ALL);
        let has_idle = u.flag();
        let idle = IdleRst {
            idle_ms: u32::from_le_bytes(u.array()),
            sender: usize::from(u.flag()),
            stray: u.flag(),
        };
        let widened = match u.byte() {
            0 => None,
            i => Unseen::ALL.get(usize::from(i) - 1).copied(),
        };
        let end_unseen_at = NonZeroU64::new(u64::from_le_bytes(u.array()));
        Some(Settled {
            endpoints,
            verdict: ConnVerdict {
                endpoints: verdict_endpoints,
                client,
                simultaneous,
                outcome,
                closer,
                idle_reset: has_idle.then_some(idle),
                widened,
                end_unseen_at,
            },
        })
    }
}

/// Slots in a [`VerdictFile`]'s cache: rows of the same few connections
/// come back together.
const CACHED_VERDICTS: usize = 1024;

/// Settled verdicts by connection id on an unlinked temporary file, a
/// record of [`SETTLED_BYTES`] at `id * SETTLED_BYTES` (a sparse file:
/// ids are dense), behind a direct-mapped write-back cache.
pub struct VerdictFile {
    file: Option<File>,
    /// By `id % CACHED_VERDICTS`: the id, its verdict, and whether the
    /// file lacks it.
    cache: Vec<Option<(u32, Settled, bool)>>,
}

impl VerdictFile {
    pub fn new() -> Self {
        VerdictFile {
            file: None,
            cache: vec![None; CACHED_VERDICTS],
        }
    }

    fn file(&mut self) -> io::Result<&File> {
        match self.file {
            Some(ref file) => Ok(file),
            None => Ok(self.file.insert(tempfile::tempfile()?)),
        }
    }

    fn write(&mut self, id: u32, settled: &Settled) -> io::Result<()> {
        let at = u64::from(id) * SETTLED_BYTES as u64;
        self.file()?.write_all_at(&settled.to_bytes(), at)
    }

    /// Puts `settled` in `id`'s cache slot, writing out the slot's
    /// previous verdict if the file lacks it.
    fn cache(&mut self, id: u32, settled: Settled, dirty: bool) -> io::Result<()> {
        let slot = id as usize % CACHED_VERDICTS;
        if let Some((old, old_settled, true)) = self.cache[slot] {
            if old != id {
                self.write(old, &old_settled)?;
            }
        }
        self.cache[slot] = Some((id, settled, dirty));
        Ok(())
    }

    /// Keeps the verdict of connection `id`.
    pub fn put(&mut self, id: u32, settled: Settled) -> io::Result<()> {
        self.cache(id, settled, true)
    }

    /// The verdict of connection `id`, if it was put.
    pub fn get(&mut self, id: u32) -> io::Result<Option<Settled>> {
        if let Some((cached, settled, _)) = self.cache[id as usize % CACHED_VERDICTS] {
            if cached == id {
                return Ok(Some(settled));
            }
        }
        let Some(file) = &self.file else {
            return Ok(None);
        };
        let mut record = [0; SETTLED_BYTES];
        let at = u64::from(id) * SETTLED_BYTES as u64;
        // Past the file's end, or in a hole: no record.
        let mut read = 0;
        while read < SETTLED_BYTES {
            match file.read_at(&mut record[read..], at + read as u64)? {
                0 => return Ok(None),
                n => read += n,
            }
        }
        let settled = Settled::from_bytes(&record);
        if let Some(settled) = settled {
            self.cache(id, settled, false)?;
        }
        Ok(settled)
    }

    /// Forgets every verdict (no held row needs one).
    pub fn clear(&mut self) {
        self.cache.iter_mut().for_each(|slot| *slot = None);
        if let Some(file) = &self.file {
            // Failing to give the blocks back only costs disk space; but
            // the old records must not be read again.
            if file.set_len(0).is_err() {
                self.file = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_file_is_a_fifo_across_chunks_and_refills() {
        let mut fifo = RowFile::<12>::new().unwrap();
        let record = |i: u32| {
            let mut r = [0u8; 12];
            r[..4].copy_from_slice(&i.to_le_bytes());
            r[8..].copy_from_slice(&(!i).to_le_bytes());
            r
        };
        let mut next_in = 0u32;
        let mut next_out = 0u32;
        // Pushes and pops interleaved, with long runs of each, so that
        // records come back from the file, from the unwritten buffer, and
        // after the file was emptied.
        for round in 0..6u32 {
            for _ in 0..(round * 70_000 + 5) {
                fifo.push(&record(next_in)).unwrap();
                next_in += 1;
            }
            let take = if round % 2 == 0 {
                fifo.len() / 2
            } else {
                fifo.len()
            };
            for _ in 0..take {
                assert_eq!(fifo.front().unwrap(), Some(&record(next_out)));
                fifo.pop();
                next_out += 1;
            }
        }
        assert_eq!(fifo.len(), u64::from(next_in - next_out));
        while fifo.front().unwrap().is_some() {
            assert_eq!(fifo.front().unwrap(), Some(&record(next_out)));
            fifo.pop();
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
    }

    fn a_verdict(i: usize) -> ConnVerdict {
        use crate::tracking::inference::{CallSet, ABORT_AFTER_DATA, FIN_STILL_READING};
        use crate::tracking::origin::Sign;
        let mut steps = CallSteps::default();
        steps.push(CallSet::of(FIN_STILL_READING));
        steps.push(CallSet::of(ABORT_AFTER_DATA));
        let endpoint = |calls, j: usize| EndpointVerdict {
            calls,
            role: Role::ALL[(i + j) % Role::ALL.len()],
            closed_by: ClosedBy::ALL[(i + 2 * j) % ClosedBy::ALL.len()],
            stopped_reading_at_fin: (i + j) % 2 == 0,
            rst_forged: (i + j) % 3 == 0,
            forged_why: Why::of(&[
                Sign::TtlDiffers {
                    rst: i as u8,
                    usual: 64,
                    v6: j == 1,
                },
                Sign::IdOutOfSequence {
                    rst: 7 + i as u16,
                    last: 65_000,
                },
                Sign::Early {
                    after_us: 3,
                    rtt_us: u32::MAX - i as u32,
                },
            ]),
        };
        ConnVerdict {
            endpoints: [endpoint(steps, 0), endpoint(CallSteps::default(), 1)],
            client: ClientChoice {
                index: i % 2,
                guessed: i % 3 == 1,
            },
            simultaneous: i % 2 == 1,
            outcome: Outcome::ALL[i % Outcome::ALL.len()],
            closer: Closer::ALL[i % Closer::ALL.len()],
            idle_reset: (i % 2 == 0).then_some(IdleRst {
                idle_ms: 1_234_567 + i as u32,
                sender: 1 - i % 2,
                stray: i % 4 == 0,
            }),
            widened: (i % 6 != 5).then(|| Unseen::ALL[i % Unseen::ALL.len()]),
            end_unseen_at: NonZeroU64::new(i as u64 * 1_000_003),
        }
    }

    /// Every field of a settled verdict survives its bytes, for every
    /// value of every enum field, IPv4 and IPv6.
    #[test]
    fn a_settled_verdict_survives_its_bytes() {
        let v4: SocketAddr = "192.0.2.1:443".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:65535".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:80".parse().unwrap();
        for i in 0..12 {
            let settled = Settled {
                endpoints: [[v4, v6], [v6, mapped], [mapped, v4]][i % 3],
                verdict: a_verdict(i),
            };
            assert_eq!(Settled::from_bytes(&settled.to_bytes()), Some(settled));
        }
        let none = Settled {
            endpoints: [v4, v4],
            verdict: ConnVerdict::default(),
        };
        assert_eq!(Settled::from_bytes(&none.to_bytes()), Some(none));
        assert_eq!(Settled::from_bytes(&[0; SETTLED_BYTES]), None);
    }

    /// Verdicts come back by id from the cache and from the file, across
    /// evictions and a clear.
    #[test]
    fn a_verdict_file_gives_back_what_was_put() {
        let addr: SocketAddr = "198.51.100.7:1".parse().unwrap();
        let settled = |i: usize| Settled {
            endpoints: [addr, addr],
            verdict: a_verdict(i),
        };
        let mut file = VerdictFile::new();
        assert_eq!(file.get(5).unwrap(), None);
        // Several times the cache, so most verdicts come from the file.
        let ids: Vec<u32> = (0..5 * CACHED_VERDICTS as u32).map(|i| i * 3 + 1).collect();
        for &id in &ids {
            file.put(id, settled(id as usize)).unwrap();
        }
        for &id in ids.iter().rev() {
            assert_eq!(file.get(id).unwrap(), Some(settled(id as usize)), "{id}");
            assert_eq!(file.get(id + 1).unwrap(), None, "{id}");
        }
        file.clear();
        assert_eq!(file.get(ids[0]).unwrap(), None);
        assert_eq!(file.get(ids[ids.len() - 1]).unwrap(), None);
    }
}
