//! Dictionary-encoded text columns written straight from small keys.
//!
//! Most texts of the segments table come from small closed sets (TCP
//! states, flags, event codes, calls, sentences, severities) or repeat
//! a connection's two addresses. Arrow's writer finds each text's
//! dictionary index by hashing it (an ahash, a table probe and a byte
//! comparison per value: a fifth of writing the table). The caller here
//! knows a key for each value (the enum's index, the connection's slot),
//! so the index is one array look-up, and the text is copied into the
//! dictionary once per row group. The segments' `len`, a number that
//! repeats as much, is keyed by its value the same way.
//!
//! The column chunk is what Arrow's writer makes for such a column: a
//! PLAIN dictionary page and an RLE_DICTIONARY data page (version 1,
//! levels in RLE), both Snappy-compressed, with an offset index. The
//! parquet crate's value encoders are private (only its `experimental`
//! feature shows them), so the pages are encoded here and written with
//! its public page API (`SerializedPageWriter`, `ColumnChunkMetaData`),
//! then spliced into the row group by `append_column`.

use std::collections::HashMap;
use std::io::Write;

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::writer::{SerializedPageWriter, SerializedRowGroupWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// Numbers below this are their own keys ([`DictionaryColumn::number_index`]):
/// a segment's length is below 65,536 unless offloading merged several.
pub(crate) const NUMBER_KEYS: usize = 1 << 16;

/// No dictionary index yet for a key.
const NONE: u32 = u32::MAX;

/// One text column of a row group: its dictionary, the rows' indices
/// into it and, for list or nullable columns, the levels.
pub(crate) struct DictionaryColumn {
    /// The dictionary index of each key seen in this row group.
    index_of_key: Vec<u32>,
    /// The dictionary page's values, PLAIN-encoded (length, bytes).
    dictionary: Vec<u8>,
    entries: u32,
    /// The dictionary's texts, by text: looked up once per key and row
    /// group, and for the rare texts without a key.
    by_text: HashMap<Box<str>, u32>,
    /// The numbers above the keys, by value.
    by_number: HashMap<u32, u32>,
    /// Each value's dictionary index.
    indices: Vec<u32>,
    /// Repetition and definition levels, one per value or empty list
    /// (empty while the column is flat and required).
    repetition: Vec<u8>,
    definition: Vec<u8>,
    rows: u64,
}

impl DictionaryColumn {
    /// A column whose keys are below `keys`, with room for `rows` values.
    pub(crate) fn new(keys: usize, rows: usize) -> Self {
        DictionaryColumn {
            index_of_key: vec![NONE; keys],
            dictionary: Vec::new(),
            entries: 0,
            by_text: HashMap::new(),
            by_number: HashMap::new(),
            indices: Vec::with_capacity(rows),
            repetition: Vec::new(),
            definition: Vec::new(),
            rows: 0,
        }
    }

    /// The dictionary index of `key`, if this row group has seen it.
    #[inline]
    pub(crate) fn known(&self, key: usize) -> Option<u32> {
        self.index_of_key
            .get(key)
            .copied()
            .filter(|&index| index != NONE)
    }

    /// Adds `text` to the dictionary as the value of `key`; its index.
    /// Keys whose texts are the same share one entry (two sentences may
    /// read alike).
    pub(crate) fn insert(&mut self, key: usize, text: &str) -> u32 {
        if key >= self.index_of_key.len() {
            self.index_of_key.resize(key + 1, NONE);
        }
        let index = self.index_of_text(text);
        self.index_of_key[key] = index;
        index
    }

    /// The dictionary index of `key`, whose value is `text`.
    #[inline]
    pub(crate) fn index(&mut self, key: usize, text: &str) -> u32 {
        match self.known(key) {
            Some(index) => index,
            None => self.insert(key, text),
        }
    }

    /// The dictionary index of `text`, found by its text (as Arrow's
    /// writer finds every one).
    pub(crate) fn index_of_text(&mut self, text: &str) -> u32 {
        if let Some(&index) = self.by_text.get(text) {
            return index;
        }
        let index = self.add(text);
        self.by_text.insert(text.into(), index);
        index
    }

    /// The dictionary index of `value` in an INT64 column (whose
    /// dictionary holds PLAIN numbers: eight bytes, little-endian),
    /// keyed by the value itself below [`NUMBER_KEYS`], found by value
    /// above.
    #[inline]
    pub(crate) fn number_index(&mut self, value: u32) -> u32 {
        let key = value as usize;
        if let Some(index) = self.known(key) {
            return index;
        }
        if key < NUMBER_KEYS {
            if key >= self.index_of_key.len() {
                self.index_of_key.resize(NUMBER_KEYS, NONE);
            }
            let index = self.add_number(value);
            self.index_of_key[key] = index;
            return index;
        }
        match self.by_number.get(&value) {
            Some(&index) => index,
            None => {
                let index = self.add_number(value);
                self.by_number.insert(value, index);
                index
            }
        }
    }

    fn add_number(&mut self, value: u32) -> u32 {
        self.dictionary
            .extend_from_slice(&i64::from(value).to_le_bytes());
        self.entries += 1;
        self.entries - 1
    }

    /// Adds `text` to the dictionary; its index.
    pub(crate) fn add(&mut self, text: &str) -> u32 {
        let len = u32::try_from(text.len()).expect("a text shorter than 4 GB");
        self.dictionary.extend_from_slice(&len.to_le_bytes());
        self.dictionary.extend_from_slice(text.as_bytes());
        self.entries += 1;
        self.entries - 1
    }

    /// A row of a flat required column.
    #[inline]
    pub(crate) fn push(&mut self, index: u32) {
        self.indices.push(index);
        self.rows += 1;
    }

    /// A value of a list column: `first` of its row or not, at the
    /// column's maximum definition level `defined`.
    #[inline]
    pub(crate) fn push_item(&mut self, index: u32, first: bool, defined: u8) {
        self.indices.push(index);
        self.repetition.push(u8::from(!first));
        self.definition.push(defined);
        self.rows += u64::from(first);
    }

    /// A row of a list column without values: a null list or an empty
    /// one, told apart by `definition`.
    #[inline]
    pub(crate) fn push_no_items(&mut self, definition: u8) {
        self.repetition.push(0);
        self.definition.push(definition);
        self.rows += 1;
    }

    /// Writes the row group's chunk of the column described by `descr`
    /// into `row_group`, and starts the next row group empty.
    pub(crate) fn write_to<W: Write + Send>(
        &mut self,
        descr: ColumnDescPtr,
        row_group: &mut SerializedRowGroupWriter<'_, W>,
    ) -> Result<()> {
        let mut sink = TrackedWrite::new(Vec::new());
        let mut pages = SerializedPageWriter::new(&mut sink);
        let dictionary_page = pages.write_page(CompressedPage::new(
            Page::DictionaryPage {
                buf: snappy(&self.dictionary)?,
                num_values: self.entries,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            },
            self.dictionary.len(),
        ))?;

        let mut data = Vec::with_capacity(self.indices.len() + 16);
        if descr.max_rep_level() > 0 {
            encode_levels(&self.repetition, descr.max_rep_level(), &mut data);
        }
        if descr.max_def_level() > 0 {
            encode_levels(&self.definition, descr.max_def_level(), &mut data);
        }
        let width = bit_width(self.entries.saturating_sub(1));
        data.push(width);
        encode_hybrid(&self.indices, width, &mut data);
        let values = if descr.max_def_level() > 0 {
            self.definition.len()
        } else {
            self.indices.len()
        };
        let values = u32::try_from(values).map_err(|_| too_many(values))?;
        let data_page = pages.write_page(CompressedPage::new(
            Page::DataPage {
                buf: snappy(&data)?,
                num_values: values,
                encoding: Encoding::RLE_DICTIONARY,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
            data.len(),
        ))?;
        pages.close()?;
        let bytes = Bytes::from(sink.into_inner()?);

        let encodings = [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY];
        let metadata = ColumnChunkMetaData::builder(descr)
            .set_compression(Compression::SNAPPY)
            .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
            .set_page_encoding_stats(vec![
                PageEncodingStats {
                    page_type: PageType::DICTIONARY_PAGE,
                    encoding: Encoding::PLAIN,
                    count: 1,
                },
                PageEncodingStats {
                    page_type: PageType::DATA_PAGE,
                    encoding: Encoding::RLE_DICTIONARY,
                    count: 1,
                },
            ])
            .set_total_compressed_size(
                (dictionary_page.compressed_size + data_page.compressed_size) as i64,
            )
            .set_total_uncompressed_size(
                (dictionary_page.uncompressed_size + data_page.uncompressed_size) as i64,
            )
            .set_num_values(i64::from(values))
            .set_data_page_offset(data_page.offset as i64)
            .set_dictionary_page_offset(Some(dictionary_page.offset as i64))
            .build()?;
        let page_size = i32::try_from(data_page.compressed_size)
            .map_err(|_| too_many(data_page.compressed_size))?;
        let close = ColumnCloseResult {
            bytes_written: bytes.len() as u64,
            rows_written: self.rows,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(OffsetIndexMetaData {
                page_locations: vec![PageLocation {
                    offset: data_page.offset as i64,
                    compressed_page_size: page_size,
                    first_row_index: 0,
                }],
                unencoded_byte_array_data_bytes: None,
            }),
        };
        row_group.append_column(&bytes, close)?;
        self.clear();
        Ok(())
    }

    fn clear(&mut self) {
        self.index_of_key.fill(NONE);
        self.dictionary.clear();
        self.entries = 0;
        self.by_text.clear();
        self.by_number.clear();
        self.indices.clear();
        self.repetition.clear();
        self.definition.clear();
        self.rows = 0;
    }
}

fn too_many(n: usize) -> ParquetError {
    ParquetError::General(format!("a page of {n} values or bytes is too large"))
}

/// Snappy's raw format, Parquet's SNAPPY codec.
fn snappy(bytes: &[u8]) -> Result<Bytes> {
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .map(Bytes::from)
        .map_err(|e| ParquetError::External(Box::new(e)))
}

/// Bits needed for values up to `max`.
fn bit_width(max: u32) -> u8 {
    (u32::BITS - max.leading_zeros()) as u8
}

/// Levels of a version 1 data page: their byte length, then the hybrid.
fn encode_levels(levels: &[u8], max: i16, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    encode_hybrid(levels, bit_width(max as u32), out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// At most this many groups of eight values in one bit-packed run, so
/// that its header is one byte (as the parquet crate writes them).
const MAX_GROUPS: usize = 63;

/// The RLE / bit-packing hybrid (parquet-format, Encodings.md): runs of
/// at least eight equal values as RLE runs, the rest bit-packed in
/// groups of eight (the last group padded with zeros).
fn encode_hybrid<T: Copy + PartialEq + Into<u32>>(values: &[T], width: u8, out: &mut Vec<u8>) {
    let mut packed_from = 0;
    let mut at = 0;
    while at < values.len() {
        let value = values[at];
        let mut end = at + 1;
        while end < values.len() && values[end] == value {
            end += 1;
        }
        // The values waiting to be bit-packed must make whole groups:
        // the run lends them its first few.
        let lend = (8 - (at - packed_from) % 8) % 8;
        if end - at >= lend + 8 {
            bit_pack(&values[packed_from..at + lend], width, out);
            rle_run(value.into(), end - at - lend, width, out);
            packed_from = end;
        }
        at = end;
    }
    bit_pack(&values[packed_from..], width, out);
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn rle_run(value: u32, count: usize, width: u8, out: &mut Vec<u8>) {
    varint(count << 1, out);
    out.extend_from_slice(&value.to_le_bytes()[..usize::from(width).div_ceil(8)]);
}

/// `values` bit-packed, least significant bit first, in runs of at most
/// [`MAX_GROUPS`] groups; a last partial group is padded with zeros.
fn bit_pack<T: Copy + Into<u32>>(values: &[T], width: u8, out: &mut Vec<u8>) {
    let bits = u32::from(width);
    for run in values.chunks(MAX_GROUPS * 8) {
        varint(run.len().div_ceil(8) << 1 | 1, out);
        for group in run.chunks(8) {
            // Eight values of `width` bits make `width` bytes.
            if width <= 16 {
                let mut packed: u128 = 0;
                for (i, &value) in group.iter().enumerate() {
                    packed |= u128::from(value.into()) << (i as u32 * bits);
                }
                out.extend_from_slice(&packed.to_le_bytes()[..usize::from(width)]);
            } else {
                let mut packed: u64 = 0;
                let mut filled = 0;
                for i in 0..8 {
                    let value = group.get(i).map_or(0, |&v| v.into());
                    packed |= u64::from(value) << filled;
                    filled += bits;
                    while filled >= 8 {
                        out.push(packed as u8);
                        packed >>= 8;
                        filled -= 8;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{bit_width, encode_hybrid, DictionaryColumn, NUMBER_KEYS};

    /// Decodes the hybrid as parquet-format describes it.
    fn decode(mut bytes: &[u8], width: u8, count: usize) -> Vec<u32> {
        let mut out = Vec::new();
        while out.len() < count {
            let mut header = 0usize;
            let mut shift = 0;
            loop {
                let b = bytes[0];
                bytes = &bytes[1..];
                header |= usize::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            if header & 1 == 1 {
                let n = (header >> 1) * 8;
                let len = (header >> 1) * usize::from(width);
                let mut bits = 0u64;
                let mut filled = 0;
                let mut read = bytes[..len].iter();
                for _ in 0..n {
                    while filled < u32::from(width) {
                        bits |= u64::from(*read.next().unwrap()) << filled;
                        filled += 8;
                    }
                    out.push((bits & ((1u64 << width) - 1)) as u32);
                    bits >>= width;
                    filled -= u32::from(width);
                }
                bytes = &bytes[len..];
            } else {
                let size = usize::from(width).div_ceil(8);
                let mut le = [0u8; 4];
                le[..size].copy_from_slice(&bytes[..size]);
                bytes = &bytes[size..];
                out.extend(std::iter::repeat_n(u32::from_le_bytes(le), header >> 1));
            }
        }
        assert!(bytes.is_empty(), "{} bytes left", bytes.len());
        out.truncate(count);
        out
    }

    #[test]
    fn the_hybrid_reads_back_as_written() {
        let mut cases: Vec<Vec<u32>> = vec![
            vec![],
            vec![0],
            vec![3; 7],
            vec![3; 8],
            vec![1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4],
            (0..1000).map(|i| i % 7).collect(),
            (0..5000).map(|i| (i / 100) % 5).collect(),
            (0..3000).map(|i| (i * 7919) % 3001).collect(),
            (0..300).map(|i| (i * 104_729) % 200_003).collect(),
        ];
        // Runs of every length after every offset.
        for before in 0..10 {
            for run in 0..20 {
                let mut v: Vec<u32> = (0..before).map(|i| i % 3).collect();
                v.extend(std::iter::repeat_n(5, run));
                v.push(1);
                cases.push(v);
            }
        }
        for values in cases {
            let width = bit_width(values.iter().copied().max().unwrap_or(0));
            let mut out = Vec::new();
            encode_hybrid(&values, width, &mut out);
            assert_eq!(decode(&out, width, values.len()), values, "{values:?}");
        }
    }

    #[test]
    fn numbers_are_their_own_keys_or_found_by_value() {
        let mut column = DictionaryColumn::new(0, 8);
        let big = NUMBER_KEYS as u32 + 4464;
        let indices: Vec<u32> = [0, 1460, big, 1460, big, 0, u32::MAX]
            .iter()
            .map(|&n| column.number_index(n))
            .collect();
        assert_eq!(indices, [0, 1, 2, 1, 2, 0, 3]);
        let plain: Vec<i64> = column
            .dictionary
            .chunks(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(plain, [0, 1460, i64::from(big), i64::from(u32::MAX)]);
        column.clear();
        assert_eq!(column.number_index(big), 0, "a row group starts empty");
    }

    #[test]
    fn one_entry_needs_no_bits() {
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(255), 8);
        assert_eq!(bit_width(256), 9);
        let mut out = Vec::new();
        encode_hybrid(&[0u32; 100], 0, &mut out);
        assert_eq!(out, [200, 1]);
    }
}
